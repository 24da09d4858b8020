/**
 * Starts the services the tests use and keeps them running until killed: a Temporal dev server and an
 * S3 server (rclone serve s3). Writes the environment the tests need to FILE as `export` lines, e.g.
 *
 *   npx tsx scripts/test-services.ts .ci/services.env &   # then: . .ci/services.env; npm run verify
 *
 * `.ci/run` uses it; `npm test` starts the same services itself when these variables are not set.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startDevServer } from '../infra/server/dev-server';
import { startS3Server, TEST_S3_URL_ENV } from '../infra/testing/s3-server';

const out = process.argv[2];
if (!out) {
  console.error('usage: tsx scripts/test-services.ts ENV_FILE');
  process.exit(2);
}
const home = await mkdtemp(join(tmpdir(), 'ablate-ci-temporal-'));
const temporal = await startDevServer({ home, namespace: 'default', ui: false });
const s3 = await startS3Server({ bucket: 'ablate-test' });
const env: Record<string, string> = {
  ABLATE_TEST_TEMPORAL_ADDRESS: temporal.address,
  ...s3.env,
  [TEST_S3_URL_ENV]: s3.storeUrl('shared'),
};
const tmp = `${out}.tmp`;
await writeFile(
  tmp,
  Object.entries(env)
    .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
    .join('\n') + '\n',
);
await import('node:fs/promises').then((fs) => fs.rename(tmp, out));
console.error(`test services up: Temporal ${temporal.address}, S3 ${s3.endpoint}; environment in ${out}`);

const stop = async () => {
  await Promise.all([temporal.stop(), s3.stop({ removeData: true })]);
  await rm(home, { recursive: true, force: true });
  await rm(out, { force: true });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
setInterval(() => undefined, 1 << 30);
