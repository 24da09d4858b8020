/**
 * Starts the services the tests use and keeps them running until killed: a Temporal dev server and an
 * S3 server (rclone serve s3). Writes the environment the tests need to FILE as `export` lines, e.g.
 *
 *   npx tsx scripts/test-services.ts .ci/services.env &   # then: . .ci/services.env; npm run verify
 *
 * `.ci/run` uses it; `npm test` starts the same services itself when these variables are not set.
 */
import { rename, rm, writeFile } from 'node:fs/promises';

import { startTestServices } from '../infra/testing/services';

const out = process.argv[2];
if (!out) {
  console.error('usage: tsx scripts/test-services.ts ENV_FILE');
  process.exit(2);
}
// Handlers first: a stop that arrives while the services start still stops them once they are up.
const starting = startTestServices({ s3: true });
const stop = async () => {
  const services = await starting.catch(() => undefined);
  await services?.stop();
  await rm(out, { force: true });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

const services = await starting;
const tmp = `${out}.tmp`;
await writeFile(
  tmp,
  Object.entries(services.env)
    .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
    .join('\n') + '\n',
);
await rename(tmp, out);
console.error(`test services up: ${services.describe}; environment in ${out}`);
setInterval(() => undefined, 1 << 30);
