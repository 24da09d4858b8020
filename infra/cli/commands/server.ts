import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { AblateError, ErrorType } from '../../errors';
import { formatDurationMs } from '../../compiler/duration';
import { isDebug, openCliSession } from '../cli-session';
import { intOption, UsageError, type Command, type CommandArgs } from '../command';
import { configArgs, configFlags, configFlagsHelp, configFrom } from '../config-flags';
import { claimInterrupt, interrupted } from '../lifecycle';
import { QUEUES } from '../../task-queues';
import type { AblateConfig } from '../../../temporal.config';

const BIN = fileURLToPath(new URL('../../../bin/ablate.mjs', import.meta.url));

function embeddedConfig(args: CommandArgs): AblateConfig {
  const config = configFrom(args);
  if (config.temporalAddress !== undefined)
    throw new UsageError(
      `TEMPORAL_ADDRESS / --address is set (${config.temporalAddress}): \`ablate server\` manages the embedded server; unset it`,
    );
  return config;
}

/** `ablate server start|stop|status`: the embedded Temporal server of a state directory. */
export const serverCommand: Command = {
  name: 'server',
  summary: 'Start, stop or show the embedded Temporal server (and background workers)',
  usage: `Usage: ablate server start [--workers] [--foreground] [--port N]
       ablate server stop
       ablate server status [--json]

One embedded Temporal server per state directory (--home / ABLATE_HOME), recorded with its pid and
ports in <home>/server.json and shared by every ablate process of that directory. A restarted server
comes back on the same ports, so separately started workers reconnect and Web UI links stay valid.

  start          start the server (or report the running one) and keep it running until
                 \`ablate server stop\`. Without it, a command that needs a server starts one and the
                 last ablate process using it stops it when it ends.
    --workers    also run workers for the cpu and gpu queues in a background process (log in
                 <home>/logs/workers.log), so detached runs go on and schedules fire
    --foreground stay in the foreground instead; Ctrl-C or SIGTERM stops workers, then the server
    --port N     the frontend port (must be free; default: the one used last, else a free one)
  stop           stop the background workers (running steps checkpoint), then the server
  status         address, Web UI, pid, uptime, workers, processes using it
    --json       one JSON object

${configFlagsHelp}`,
  options: {
    ...configFlags,
    workers: { type: 'boolean' },
    foreground: { type: 'boolean' },
    port: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(args) {
    const [action, ...extra] = args.positionals;
    if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    switch (action) {
      case 'start':
        return args.values.foreground ? startForeground(args) : startBackground(args);
      case 'stop':
        return stop(args);
      case 'status':
        return status(args);
      // Internal: the body of the background workers process `server start --workers` spawns.
      case 'workers':
        return runBackgroundWorkers(args);
      case undefined:
        throw new UsageError('no action given: start, stop or status');
      default:
        throw new UsageError(`unknown action ${JSON.stringify(action)}: expected start, stop or status`);
    }
  },
};

async function startExplicit(args: CommandArgs, config: AblateConfig) {
  const { startDevServer, updateServerRecord } = await import('../../server/dev-server');
  const port = args.values.port === undefined ? undefined : intOption(args, 'port', 7233, 1);
  const server = await startDevServer({
    home: config.home,
    namespace: config.namespace,
    temporalBin: config.temporalBin,
    mode: 'explicit',
    port,
    log: (m) => console.error(m),
  });
  if (!server.owned && port !== undefined && server.record.port !== port)
    console.error(`the server of ${config.home} already runs on port ${server.record.port}, not ${port}`);
  if (server.record.mode !== 'explicit')
    await updateServerRecord(config.home, server.record.pid, (r) => ({ ...r, mode: 'explicit' }));
  return server;
}

async function startBackground(args: CommandArgs): Promise<number> {
  const config = embeddedConfig(args);
  const { readServerRecord, serverPaths, isProcess } = await import('../../server/registry');
  const server = await startExplicit(args, config);
  // This process only started it: leaving does not stop an explicit server.
  await server.stop();
  if (args.values.workers) {
    const current = await readServerRecord(config.home);
    if (current?.workers && isProcess(current.workers.pid, 'ablate')) {
      console.error(`background workers already run (pid ${current.workers.pid})`);
    } else {
      const logPath = serverPaths(config.home).workersLog;
      const out = openSync(logPath, 'a');
      const child = spawn(
        process.execPath,
        [BIN, 'server', 'workers', ...configArgs(config), ...(isDebug(args.values) ? ['--debug'] : [])],
        { stdio: ['ignore', out, out], detached: true },
      );
      closeSync(out);
      child.unref();
      const deadline = Date.now() + 120_000;
      for (;;) {
        const r = await readServerRecord(config.home);
        if (r?.workers?.pid === child.pid) break;
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill('SIGKILL');
          const tail = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
          throw new AblateError(
            ErrorType.InvalidConfig,
            `the background workers did not start (see ${logPath}): ${tail.join(' | ')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      console.error(`background workers started (pid ${child.pid}); log: ${logPath}`);
    }
  }
  return status(args);
}

async function startForeground(args: CommandArgs): Promise<number> {
  const config = embeddedConfig(args);
  const { stopDevServer } = await import('../../server/dev-server');
  const release = claimInterrupt();
  try {
    const server = await startExplicit(args, config);
    await server.stop();
    const session = args.values.workers
      ? await openCliSession(config, {
          workers: { queues: QUEUES, workflows: true },
          debug: isDebug(args.values),
        })
      : undefined;
    console.error(
      `embedded Temporal server at ${server.address}${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}${session ? ', workers for the cpu and gpu queues' : ''}; Ctrl-C stops ${session ? 'them' : 'it'}`,
    );
    if (!interrupted.aborted)
      await new Promise((r) => interrupted.addEventListener('abort', r, { once: true }));
    await session?.close();
    await stopDevServer(config.home, (m) => console.error(m));
    return 0;
  } finally {
    release();
  }
}

async function stop(args: CommandArgs): Promise<number> {
  const config = embeddedConfig(args);
  const { stopDevServer } = await import('../../server/dev-server');
  const stopped = await stopDevServer(config.home, (m) => console.error(m));
  console.log(
    stopped
      ? `stopped the embedded Temporal server of ${config.home}`
      : `no embedded Temporal server runs for ${config.home}`,
  );
  return 0;
}

async function status(args: CommandArgs): Promise<number> {
  const config = embeddedConfig(args);
  const { serverStatus } = await import('../../server/dev-server');
  const s = await serverStatus(config.home);
  const uptimeMs = s.record ? Date.now() - new Date(s.record.startedAt).getTime() : undefined;
  if (args.values.json) {
    console.log(
      JSON.stringify({
        running: s.running,
        home: s.home,
        address: s.running ? s.record!.address : null,
        uiUrl: s.running ? (s.record!.uiUrl ?? null) : null,
        pid: s.running ? s.record!.pid : null,
        mode: s.running ? s.record!.mode : null,
        startedAt: s.running ? s.record!.startedAt : null,
        uptimeMs: s.running ? uptimeMs : null,
        answering: s.answering ?? false,
        workers: s.workersRunning ? s.record!.workers : null,
        clients: s.clients,
      }),
    );
    return 0;
  }
  if (!s.running) {
    console.log(`no embedded Temporal server runs for ${s.home} (\`ablate server start\` starts one)`);
    return 0;
  }
  const r = s.record!;
  const lines = [
    `embedded Temporal server of ${s.home}`,
    `  address   ${r.address}${s.answering ? '' : ' (not answering)'}`,
    `  Web UI    ${r.uiUrl ?? '(none)'}`,
    `  pid       ${r.pid}, up ${formatDurationMs(uptimeMs ?? 0)}, ${r.mode === 'explicit' ? 'runs until `ablate server stop`' : 'stops when the last ablate process using it ends'}`,
    `  workers   ${s.workersRunning ? `pid ${r.workers!.pid}, queues ${r.workers!.queues.join(', ')}, log ${r.workers!.logPath}` : 'none in the background'}`,
    `  in use by ${s.clients.length ? s.clients.map((p) => `pid ${p}`).join(', ') : 'no ablate process'}`,
    `  database  ${r.dbPath}`,
    `  log       ${r.logPath}`,
  ];
  for (const l of lines) console.log(l);
  return 0;
}

async function runBackgroundWorkers(args: CommandArgs): Promise<number> {
  const config = embeddedConfig(args);
  const { updateServerRecord } = await import('../../server/dev-server');
  const { readServerRecord, serverPaths } = await import('../../server/registry');
  const release = claimInterrupt();
  try {
    const session = await openCliSession(config, {
      workers: { queues: QUEUES, workflows: true },
      debug: isDebug(args.values),
    });
    const serverPid = (await readServerRecord(config.home))?.pid;
    const workers = {
      pid: process.pid,
      queues: [...QUEUES],
      logPath: serverPaths(config.home).workersLog,
      startedAt: new Date().toISOString(),
    };
    if (serverPid !== undefined) await updateServerRecord(config.home, serverPid, (r) => ({ ...r, workers }));
    console.error(
      `${workers.startedAt} workers: ready (queues ${QUEUES.join(', ')}, Temporal ${session.address})`,
    );
    if (!interrupted.aborted)
      await Promise.race([
        new Promise((r) => interrupted.addEventListener('abort', r, { once: true })),
        session.workers!.done,
      ]);
    console.error(`${new Date().toISOString()} workers: stopping (running steps get 5 s, then checkpoint)`);
    if (serverPid !== undefined)
      await updateServerRecord(config.home, serverPid, ({ workers: _w, ...r }) => r);
    await session.close();
    return 0;
  } finally {
    release();
  }
}

/** `ablate ui`: the Web UI address of the embedded server. */
export const uiCommand: Command = {
  name: 'ui',
  summary: "Print (or --open) the embedded server's Web UI address",
  usage: `Usage: ablate ui [--open]

Prints the Web UI address of the state directory's embedded Temporal server.

  --open    also open it in the browser (xdg-open / open)

${configFlagsHelp}`,
  options: { ...configFlags, open: { type: 'boolean' } },
  async run(args) {
    const config = embeddedConfig(args);
    const { serverStatus } = await import('../../server/dev-server');
    const s = await serverStatus(config.home);
    if (!s.running)
      throw new AblateError(
        ErrorType.InvalidConfig,
        `no embedded Temporal server runs for ${config.home}: start one with \`ablate server start\``,
      );
    const url = s.record!.uiUrl;
    if (!url)
      throw new AblateError(
        ErrorType.InvalidConfig,
        `the embedded server of ${config.home} runs without a Web UI`,
      );
    console.log(url);
    if (args.values.open) {
      const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
      const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
      child.on('error', () => console.error(`could not run ${opener}; open ${url} yourself`));
      child.unref();
    }
    return 0;
  },
};
