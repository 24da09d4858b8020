#!/usr/bin/env node
// The `ablate` command. The sources are TypeScript; tsx compiles them on the fly (and caches).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../infra/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
