import { errorMessage } from '../../errors.ts';
import { GoogleApiError, GoogleCredentialsError, type GoogleApi } from './api.ts';
import type { GoogleDriveConfig } from './config.ts';
import { FOLDER_MIME } from './items.ts';

/**
 * The connection test run before a source is saved (a failure is the API's 422). Each step says
 * what the admin has to fix: the key itself, the domain-wide delegation of its client id, or
 * `adminEmail` (not a user of the domain, or not an administrator); then that every configured
 * shared drive and folder can be reached.
 */
export async function testConnection(api: GoogleApi, cfg: GoogleDriveConfig): Promise<void> {
  const scopes = api.scopesFor(cfg.adminEmail);
  const clientId = api.clientId;
  try {
    await api.token(cfg.adminEmail, scopes);
  } catch (err) {
    throw new Error(explainTokenFailure(err, cfg, scopes, clientId, api.tokenUri), { cause: err });
  }

  await step(() => api.call('Directory groups', api.adminEmail, () =>
    api.directory().groups.list({ domain: cfg.domain, maxResults: 1 }, api.options())), (err) =>
    err.status === 403 || err.status === 401
      ? `adminEmail ${cfg.adminEmail} may not read the Directory of ${cfg.domain} (${err.message}): it must be a Workspace administrator with at least the Groups read privilege, and domain must be the Workspace's primary domain`
      : err.status === 400 || err.status === 404
        ? `the Directory does not know the domain ${cfg.domain} (${err.message})`
        : null);

  if (cfg.driveIds === undefined) {
    await step(() => api.call('list shared drives', api.adminEmail, () =>
      api.drive().drives.list({ useDomainAdminAccess: true, pageSize: 1, fields: 'drives(id)' }, api.options())), (err) =>
      err.status === 403 ? `adminEmail ${cfg.adminEmail} may not list the domain's shared drives (${err.message}); it needs the Manage shared drives admin privilege` : null);
  }
  for (const id of cfg.driveIds ?? []) {
    await step(() => api.call(`shared drive ${id}`, api.adminEmail, () =>
      api.drive().drives.get({ driveId: id, useDomainAdminAccess: true, fields: 'id,name' }, api.options())), (err) =>
      err.status === 404 ? `shared drive ${id} not found in ${cfg.domain}` : err.status === 403 ? `adminEmail ${cfg.adminEmail} may not read shared drive ${id} (${err.message})` : null);
  }
  for (const id of cfg.folderIds ?? []) {
    const folder = await step(() => api.call(`folder ${id}`, api.adminEmail, () =>
      api.drive().files.get({ fileId: id, supportsAllDrives: true, fields: 'id,name,mimeType' }, api.options())), (err) =>
      err.status === 404 ? `folder ${id} not found, or not shared with ${cfg.adminEmail}` : null);
    if (folder.mimeType !== FOLDER_MIME) throw new Error(`folderIds: ${id} ("${folder.name}") is not a folder`);
  }
}

async function step<T>(fn: () => Promise<T>, explain: (err: GoogleApiError) => string | null): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const text = err instanceof GoogleApiError ? explain(err) : null;
    throw new Error(text ?? errorMessage(err), { cause: err });
  }
}

/** Google's token endpoint answers: invalid_grant for a bad key or subject, unauthorized_client without delegation. */
function explainTokenFailure(err: unknown, cfg: GoogleDriveConfig, scopes: string[], clientId: string | undefined, tokenUri: string): string {
  if (!(err instanceof GoogleCredentialsError)) {
    return `cannot obtain a token from ${tokenUri} with the service-account key: ${errorMessage(err)}`;
  }
  const said = `${err.code}${err.description ? `: ${err.description}` : ''}`;
  if (err.code === 'unauthorized_client') {
    return `domain-wide delegation is not set up for this service account (${said}): in the Admin console (Security → API controls → Domain-wide delegation) ` +
      `authorize client ID ${clientId ?? '(client_id of the key)'} for the scopes ${scopes.join(',')}`;
  }
  if (err.code === 'invalid_grant' && /email|user id|subject/i.test(err.description)) {
    return `adminEmail ${cfg.adminEmail} is not a user of the Workspace (${said})`;
  }
  if (err.code === 'invalid_grant' || err.code === 'invalid_client') {
    return `the service-account key was rejected (${said}): use a current JSON key of the service account (it may have been deleted or rotated)`;
  }
  return `Google refused a token for ${cfg.adminEmail} (${said})`;
}
