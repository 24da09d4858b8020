/**
 * Entry point of the `ablate` command: dispatches to a sub-command and owns the one error handler.
 * Stack traces are printed only with `--debug`. Signals and exit codes: see ./lifecycle.ts.
 */
import { AblateError, ErrorType } from '../errors';
import { InterruptedError } from './cli-session';
import { parseCommandArgs, UsageError, type Command } from './command';
import { commands } from './commands/index';
import { suggest } from '../did-you-mean';
import { EXIT_CODES_HELP, ExitCode, imposedExitCode, installProcessHandlers } from './lifecycle';

const HELP = `ablate: durable, resumable ML ablation studies on Temporal

Usage: ablate <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run \`ablate <command> --help\` for a command's options. Add --debug to any command for stack traces
and the Temporal SDK's own messages (otherwise in <state dir>/logs/sdk.log).

State directory: --home or ABLATE_HOME, else $XDG_STATE_HOME/ablate, else ~/.local/state/ablate. It
holds the embedded Temporal server's database; one server per state directory, shared by every ablate
process using it. A server \`ablate server start\` started runs until \`ablate server stop\`; one a
command started on its own is stopped when the last ablate process using it ends.

${EXIT_CODES_HELP}`;

/** Run the CLI with `argv` (without `node` and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    console.log(pkg.version);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const hint = suggest(
      name,
      commands.map((c) => c.name),
    );
    console.error(
      `ablate: unknown command ${JSON.stringify(name)}${hint ? ` (did you mean "${hint}"?)` : ''}\n`,
    );
    console.error(HELP);
    return 2;
  }
  const debug = rest.includes('--debug');
  installProcessHandlers({ debug });
  try {
    const args = parseCommandArgs(command, rest);
    if (args.values.help === true) {
      console.log(command.usage);
      return 0;
    }
    const code = await command.run(args);
    return imposedExitCode() ?? code;
  } catch (err) {
    if (err instanceof InterruptedError) return err.exitCode;
    // After a signal, errors from calls cut short are expected: exit with the signal's code, quietly.
    const imposed = imposedExitCode();
    if (imposed !== undefined) return imposed;
    return reportError(command, err, debug);
  }
}

/** Errors that mean the environment is wrong rather than the run. */
const ENVIRONMENT_ERRORS = new Set<string>([
  ErrorType.InvalidConfig,
  ErrorType.StoreUnavailable,
  ErrorType.StorageFull,
]);

function reportError(command: Command, err: unknown, debug: boolean): number {
  if (err instanceof UsageError) {
    console.error(`ablate ${command.name}: ${err.message}\n\n${command.usage}`);
    return ExitCode.Usage;
  }
  if (err instanceof AblateError) {
    console.error(`ablate ${command.name}: ${err.type}: ${err.message}`);
  } else {
    console.error(
      `ablate ${command.name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    );
  }
  if (debug && err instanceof Error && err.stack) console.error(err.stack);
  else if (!(err instanceof AblateError)) console.error('(run again with --debug for the stack trace)');
  if (err instanceof AblateError) {
    if (err.type === ErrorType.InvalidPipeline) return ExitCode.Usage;
    if (ENVIRONMENT_ERRORS.has(err.type)) return ExitCode.Environment;
  }
  return ExitCode.Failed;
}
