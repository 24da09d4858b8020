/**
 * Store selection by URL: `file:///path` (the embedded default) or `s3://bucket/prefix?…` (see
 * s3-config.ts for the parameters and environment variables).
 */
import { ErrorType, permanent } from '../errors';
import { ArtifactStore, type ArtifactStoreOptions } from './artifact-store';
import { FsBackend } from './fs-backend';

export { ArtifactStore, type ArtifactStoreOptions } from './artifact-store';
export type { BlobBackend } from './backend';
export type { TransferOptions, TransferProgress } from './transfer';

/** Open the artifact store at `url`. */
export async function openStore(url: string, options: ArtifactStoreOptions = {}): Promise<ArtifactStore> {
  if (url.startsWith('file://')) return new ArtifactStore(FsBackend.fromUrl(url), options);
  if (url.startsWith('s3://')) {
    // The AWS SDK is large: load it only when an S3 store is actually used.
    const { S3Backend } = await import('./s3-backend');
    return new ArtifactStore(await S3Backend.fromUrl(url), options);
  }
  throw permanent(
    ErrorType.InvalidConfig,
    `unsupported artifact store URL ${JSON.stringify(url)}: use file:///path or s3://bucket/prefix`,
  );
}
