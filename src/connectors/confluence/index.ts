import type { ConnectorFactory } from '../interface.ts';
import { createConfluenceConnector } from './connector.ts';

export { createConfluenceConnector, confluenceExternalId, type ConfluenceConnector, type CreateConfluenceArgs } from './connector.ts';
export { confluenceConfigSchema, confluenceCredentialsSchema, type ConfluenceConfig, type ConfluenceCredentials } from './config.ts';
export { ConfluenceError, type ConfluenceTuning } from './client.ts';

/** Registry entry point: `connectors.confluence = { factory: confluenceConnectorFactory, configSchema, credentialsSchema }`. */
export const confluenceConnectorFactory: ConnectorFactory = ({ sourceId, config, credentials }) =>
  createConfluenceConnector({ sourceId, config, credentials });
