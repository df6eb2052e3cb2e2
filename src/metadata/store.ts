import type { AlertStore } from '../freshness/ports.ts';
import { SqlAgentStore } from './agents.ts';
import { SqlAlertStore } from './alerts.ts';
import { SqlAuditStore } from './audit.ts';
import { SqlDocumentStore } from './documents.ts';
import { SqlEmbeddingCache } from './embeddings.ts';
import { SqlGroupStore } from './groups.ts';
import type { MetadataStore, SqlDriver } from './interface.ts';
import { migrate } from './migrations.ts';
import { SqlNotificationStore } from './notifications.ts';
import { SqlRunStore } from './runs.ts';
import { SqlSourceStore } from './sources.ts';
import { SqlKillSwitchStore } from './switches.ts';

/** The metadata store over either SQL driver; both speak the same dialect, so there is one code path. */
export class SqlMetadataStore implements MetadataStore {
  readonly kind: SqlDriver['kind'];
  readonly sources: SqlSourceStore;
  readonly documents: SqlDocumentStore;
  readonly runs: SqlRunStore;
  readonly groups: SqlGroupStore;
  readonly embeddings: SqlEmbeddingCache;
  readonly audit: SqlAuditStore;
  readonly agents: SqlAgentStore;
  readonly switches: SqlKillSwitchStore;
  readonly notifications: SqlNotificationStore;

  constructor(private readonly driver: SqlDriver) {
    this.kind = driver.kind;
    this.sources = new SqlSourceStore(driver);
    this.documents = new SqlDocumentStore(driver);
    this.runs = new SqlRunStore(driver);
    this.groups = new SqlGroupStore(driver);
    this.embeddings = new SqlEmbeddingCache(driver);
    this.audit = new SqlAuditStore(driver);
    this.agents = new SqlAgentStore(driver);
    this.switches = new SqlKillSwitchStore(driver);
    this.notifications = new SqlNotificationStore(driver);
  }

  async migrate(): Promise<void> {
    await migrate(this.driver);
  }

  async ping(): Promise<void> {
    await this.driver.query('SELECT 1 AS ok', []);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

/** The stores kept in the metadata database: the metadata port and the freshness port, on one driver. */
export interface Stores {
  metadata: MetadataStore;
  alerts: AlertStore;
}

export function sqlStores(driver: SqlDriver): Stores {
  return { metadata: new SqlMetadataStore(driver), alerts: new SqlAlertStore(driver) };
}
