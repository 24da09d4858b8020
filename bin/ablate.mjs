#!/usr/bin/env node
// The `ablate` command. The sources are TypeScript; tsx compiles them on the fly (and caches).
import { register } from 'tsx/esm/api';

register();
// The AWS SDK warns on every start that a future version will need Node 22; not actionable here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../infra/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
