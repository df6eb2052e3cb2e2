import type { z } from 'zod';
import type { SourceType } from '../types.ts';
import type { ConnectorFactory } from './interface.ts';
import { confluenceConfigSchema, confluenceConnectorFactory, confluenceCredentialsSchema } from './confluence/index.ts';
import { filesystemConfigSchema, filesystemConnectorFactory } from './filesystem/index.ts';
import { googleDriveConfigSchema, googleDriveConnectorFactory, googleDriveCredentialsSchema } from './google-drive/index.ts';
import { sharepointConfigSchema, sharepointConnectorFactory, sharepointCredentialsSchema } from './sharepoint/index.ts';

export interface ConnectorRegistration {
  factory: ConnectorFactory;
  configSchema: z.ZodType<Record<string, unknown>>;
  /** null when the source type takes no credentials. */
  credentialsSchema: z.ZodType<Record<string, unknown>> | null;
}

/** Source types this build can sync. The API rejects any other type with a 400. */
export const connectors: Partial<Record<SourceType, ConnectorRegistration>> = {
  filesystem: { factory: filesystemConnectorFactory, configSchema: filesystemConfigSchema, credentialsSchema: null },
  sharepoint: { factory: sharepointConnectorFactory, configSchema: sharepointConfigSchema, credentialsSchema: sharepointCredentialsSchema },
  google_drive: { factory: googleDriveConnectorFactory, configSchema: googleDriveConfigSchema, credentialsSchema: googleDriveCredentialsSchema },
  confluence: { factory: confluenceConnectorFactory, configSchema: confluenceConfigSchema, credentialsSchema: confluenceCredentialsSchema },
};

export function connectorFor(type: string): ConnectorRegistration | undefined {
  return (connectors as Record<string, ConnectorRegistration | undefined>)[type];
}
