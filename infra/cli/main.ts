/**
 * Entry point of the `ablate` command: dispatches to a sub-command and owns the one error handler.
 * Stack traces are printed only with `--debug`.
 */
import { AblateError } from '../errors';
import { parseCommandArgs, UsageError, type Command } from './command';
import { commands } from './commands/index';
import { suggest } from '../did-you-mean';

const HELP = `ablate: durable, resumable ML ablation studies on Temporal

Usage: ablate <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run \`ablate <command> --help\` for a command's options. Add --debug to any command for stack traces.`;

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
  try {
    const args = parseCommandArgs(command, rest);
    if (args.values.help === true) {
      console.log(command.usage);
      return 0;
    }
    return await command.run(args);
  } catch (err) {
    return reportError(command, err, debug);
  }
}

function reportError(command: Command, err: unknown, debug: boolean): number {
  if (err instanceof UsageError) {
    console.error(`ablate ${command.name}: ${err.message}\n\n${command.usage}`);
    return 2;
  }
  if (err instanceof AblateError) {
    console.error(`ablate ${command.name}: ${err.type}: ${err.message}`);
  } else {
    console.error(`ablate ${command.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (debug && err instanceof Error && err.stack) console.error(err.stack);
  else if (!(err instanceof AblateError)) console.error('(run again with --debug for the stack trace)');
  return 1;
}
