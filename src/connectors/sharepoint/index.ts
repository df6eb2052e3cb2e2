import type { ConnectorFactory } from '../interface.ts';
import { createSharePointConnector } from './connector.ts';

export { createSharePointConnector, type SharePointConnector, type CreateSharePointArgs } from './connector.ts';
export { sharepointConfigSchema, sharepointCredentialsSchema, type SharePointConfig, type SharePointCredentials } from './config.ts';
export { sharepointExternalId } from './items.ts';
export { GraphError, type GraphTuning } from './graph.ts';
export { CredentialsError } from './auth.ts';

/** Registry entry point: `connectors.sharepoint = { factory: sharepointConnectorFactory, configSchema, credentialsSchema }`. */
export const sharepointConnectorFactory: ConnectorFactory = ({ sourceId, config, credentials }) =>
  createSharePointConnector({ sourceId, config, credentials });
