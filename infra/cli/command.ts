/**
 * What every `ablate` sub-command looks like, and the error the CLI prints as a usage message.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Options of a command, in node:util parseArgs form. */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** Parsed arguments handed to a command. */
export interface CommandArgs {
  positionals: string[];
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
}

export interface Command {
  /** The word after `ablate`, e.g. `plan`. */
  name: string;
  /** One line for `ablate --help`. */
  summary: string;
  /** Full help text: synopsis, options, examples. */
  usage: string;
  options: CommandOptions;
  /** Does the work; returns the exit code. */
  run(args: CommandArgs): Promise<number>;
}

/** Wrong use of the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parse argv for one command, turning parseArgs' errors into {@link UsageError}s. */
export function parseCommandArgs(command: Command, argv: string[]): CommandArgs {
  try {
    const { positionals, values } = parseArgs({
      args: argv,
      options: { ...command.options, help: { type: 'boolean', short: 'h' }, debug: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
    return { positionals, values };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A string option, or undefined. */
export function stringOption(args: CommandArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** An integer option with bounds, or the default. */
export function intOption(args: CommandArgs, name: string, fallback: number, min = 0): number {
  const raw = stringOption(args, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}
