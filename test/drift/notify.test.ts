import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { notify, type NotifyPayload } from '../../infra/drift/notify';

const payload: NotifyPayload = {
  event: 'drift',
  pipeline: 'drifty',
  runId: 'drifty-20260101-000000-abcd',
  baselineRunId: 'drifty-20251231-000000-0123',
  verdict: 'drift in 1 of 4 cells: AP -0.012 on word=alpha; cause: steps.seed.with.text changed ("a" -> "b")',
  report: { uri: 'file:///store/sha256/ab/abcd', digest: `sha256:${'ab'.repeat(32)}` },
};

/** A local HTTP server that answers each POST with `status` after `delayMs`, and keeps the bodies. */
async function receiver(status = 200, delayMs = 0) {
  const bodies: Array<{ contentType: string | undefined; body: unknown }> = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push({ contentType: req.headers['content-type'], body: JSON.parse(body) as unknown });
      setTimeout(() => res.writeHead(status).end(status === 200 ? 'ok' : 'no thanks'), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    bodies,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('notifications', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ablate-notify-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('POSTs the payload as JSON to the URL', async () => {
    const hook = await receiver();
    try {
      const results = await notify({ url: hook.url, log: () => assert.fail('nothing to log') }, payload);
      assert.deepEqual(results, [{ channel: 'url', ok: true }]);
      assert.deepEqual(hook.bodies, [{ contentType: 'application/json', body: payload }]);
    } finally {
      await hook.close();
    }
  });

  it('runs the command with the payload on stdin and the verdict in its environment', async () => {
    const out = join(dir, 'got.json');
    const logged: string[] = [];
    const results = await notify(
      {
        command: `cat > ${out}; echo "verdict=$ABLATE_VERDICT run=$ABLATE_RUN_ID report=$ABLATE_REPORT_URI"`,
        log: (l) => logged.push(l),
      },
      payload,
    );
    assert.deepEqual(results, [{ channel: 'command', ok: true }]);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), payload);
    assert.deepEqual(logged, [
      `notify command output: verdict=${payload.verdict} run=${payload.runId} report=${payload.report!.uri}`,
    ]);
  });

  it('a failing, hanging or unreachable notifier is logged, never thrown', async () => {
    const logged: string[] = [];
    const log = (l: string) => logged.push(l);
    const hook = await receiver(500);
    const slow = await receiver(200, 5_000);
    try {
      const started = Date.now();
      const results = await Promise.all([
        notify({ command: 'echo nope >&2; exit 3', url: hook.url, log }, payload),
        notify({ command: 'sleep 30', timeoutMs: 300, log }, payload),
        notify({ url: slow.url, timeoutMs: 300, log }, payload),
        notify({ url: 'http://127.0.0.1:9/closed', log }, payload),
      ]);
      assert.ok(Date.now() - started < 4_000, 'timeouts bound the wait');
      assert.deepEqual(
        results.flat().map((r) => [r.channel, r.ok, r.error?.replace(/\(.*\)$/, '(…)')]),
        [
          ['command', false, 'exit status 3'],
          ['url', false, 'HTTP 500: no thanks'],
          ['command', false, 'timed out after 300 ms'],
          ['url', false, 'timed out after 300 ms'],
          ['url', false, 'fetch failed (…)'],
        ],
      );
      assert.ok(logged.includes('notify command output: nope'));
      assert.ok(logged.includes('notify: command "echo nope >&2; exit 3" failed: exit status 3'));
      assert.ok(logged.includes(`notify: POST ${hook.url} failed: HTTP 500: no thanks`));
      assert.ok(logged.includes('notify: command "sleep 30" failed: timed out after 300 ms'));
    } finally {
      await hook.close();
      await slow.close();
    }
  });
});
