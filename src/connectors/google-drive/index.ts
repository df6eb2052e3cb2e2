import type { ConnectorFactory } from '../interface.ts';
import { createGoogleDriveConnector } from './connector.ts';

export { createGoogleDriveConnector, type CreateGoogleDriveArgs, type GoogleDriveConnector } from './connector.ts';
export { googleDriveConfigSchema, googleDriveCredentialsSchema, type GoogleDriveConfig, type ServiceAccountKey } from './config.ts';
export { GoogleApiError, GoogleCredentialsError, type GoogleTuning } from './api.ts';
export { driveExternalId } from './items.ts';

/** Registry entry point: `connectors.google_drive = { factory: googleDriveConnectorFactory, configSchema, credentialsSchema }`. */
export const googleDriveConnectorFactory: ConnectorFactory = ({ sourceId, config, credentials }) =>
  createGoogleDriveConnector({ sourceId, config, credentials });
