import { getStepKind, stepKinds } from '../../../activities/runtime/registry';
import { suggest } from '../../did-you-mean';
import { UsageError, type Command } from '../command';

/** `ablate kinds [NAME] [--schema]`: the step kinds, their parameters and outputs. */
export const kindsCommand: Command = {
  name: 'kinds',
  summary: "List step kinds; show one kind's parameters (JSON Schema) and outputs",
  usage: `Usage: ablate kinds [NAME] [--schema]

Without NAME: one line per step kind. With NAME: its queue, outputs and the JSON Schema of its \`with\`.
  --schema   print only the JSON Schema of NAME's \`with\``,
  options: { schema: { type: 'boolean' } },
  async run(args) {
    const [name] = args.positionals;
    if (name === undefined) {
      for (const k of stepKinds) console.log(`${k.name.padEnd(18)} ${k.queue}  ${k.summary}`);
      return 0;
    }
    const kind = getStepKind(name);
    if (!kind) {
      const hint = suggest(
        name,
        stepKinds.map((k) => k.name),
      );
      throw new UsageError(
        `unknown step kind ${JSON.stringify(name)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
      );
    }
    if (args.values.schema === true) {
      console.log(JSON.stringify(kind.withSchema, null, 2));
      return 0;
    }
    console.log(
      `${kind.name} (version ${kind.version}, default queue ${kind.queue})\n${kind.summary}\n\nOutputs:`,
    );
    for (const [out, spec] of Object.entries(kind.outputs))
      console.log(`  ${out.padEnd(16)} ${spec.type.padEnd(8)} ${spec.description}`);
    console.log(`\nParameters (\`with\`), JSON Schema:\n${JSON.stringify(kind.withSchema, null, 2)}`);
    return 0;
  },
};
