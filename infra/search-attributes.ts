/**
 * Registering ablate's search attributes (defined in workflows/search-attributes.ts) on the Temporal
 * namespace a session talks to. On the embedded dev server ablate registers them itself; on a remote
 * server it tries the same operator call and, where that is not allowed, carries on without them
 * (runs start without attributes, `ablate runs --schedule/--drifted` cannot filter) after saying how to
 * register them (README, "Nightly reproductions").
 */
import type { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';

import { ABLATE_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import type { Session } from './session';

const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;

const INDEXED_TYPE: Record<SearchAttributeType, proto.temporal.api.enums.v1.IndexedValueType> = {
  TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** The `temporal` CLI commands that register ablate's attributes on a remote namespace. */
export function registerCommands(namespace: string): string[] {
  return ABLATE_SEARCH_ATTRIBUTES.map(
    (k) =>
      `temporal operator search-attribute create --namespace ${namespace} --name ${k.name} --type ${k.type === 'KEYWORD' ? 'Keyword' : k.type}`,
  );
}

const checked = new WeakMap<object, Promise<boolean>>();

/**
 * Make sure ablate's search attributes exist on the session's namespace; resolves to whether they
 * do (once per session). Registration is idempotent: another process registering them at the same
 * time is fine.
 */
export function ensureSearchAttributes(
  session: Session,
  log: (message: string) => void = () => undefined,
): Promise<boolean> {
  let result = checked.get(session.client);
  if (!result) {
    result = register(session, log);
    checked.set(session.client, result);
  }
  return result;
}

async function missingAttributes(session: Session): Promise<string[]> {
  const { customAttributes } = await session.client.connection.operatorService.listSearchAttributes({
    namespace: session.config.namespace,
  });
  return ABLATE_SEARCH_ATTRIBUTES.map((k) => k.name).filter((n) => !(customAttributes ?? {})[n]);
}

async function register(session: Session, log: (message: string) => void): Promise<boolean> {
  const namespace = session.config.namespace;
  let missing = await missingAttributes(session);
  if (missing.length === 0) return true;
  let refusal: string | undefined;
  try {
    await session.client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        ABLATE_SEARCH_ATTRIBUTES.filter((k) => missing.includes(k.name)).map((k) => [
          k.name,
          INDEXED_TYPE[k.type],
        ]),
      ),
    });
  } catch (err) {
    // ALREADY_EXISTS when another process registered them first; anything else is re-checked below.
    refusal = (err as Error).message;
  }
  // The dev server refreshes its cache on read; a cluster may take a moment to see new attributes.
  const deadline = Date.now() + 10_000;
  for (;;) {
    missing = await missingAttributes(session);
    if (missing.length === 0) return true;
    if (Date.now() > deadline || (refusal && !/already exists/i.test(refusal))) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  log(
    `ablate's search attributes are not registered on namespace ${namespace} (${missing.join(', ')})${refusal ? `: ${refusal}` : ''}; ` +
      `runs start without them and cannot be found by schedule or verdict. Register them once with:\n  ${registerCommands(namespace).join('\n  ')}`,
  );
  return false;
}
