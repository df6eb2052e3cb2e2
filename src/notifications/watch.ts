import { watch, type FSWatcher } from 'node:fs';
import type { Services } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { metrics } from '../metrics.ts';
import { checkFilesystemPath } from '../sources/filesystem-roots.ts';

/** How often the set of watched folders is compared with the sources (added, removed, paused). */
const RECONCILE_MS = 5_000;

/**
 * `filesystem` sources with `config.watch: true`: the folder is watched recursively (Node's
 * recursive fs.watch), ACL files included, and every burst of file events becomes one sync
 * request — the job layer's SyncRequests debounce the rest, so a bulk copy of thousands of files
 * costs one incremental sync plus at most one follow-up. Runs in worker processes.
 */
export class FilesystemWatchers {
  private readonly watchers = new Map<string, { path: string; watcher: FSWatcher }>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly services: Services) {}

  async start(): Promise<void> {
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), RECONCILE_MS);
    this.timer.unref();
  }

  /** Starts watchers for new watched sources and stops those of sources removed, paused or unwatched. */
  async reconcile(): Promise<void> {
    if (this.closed) return;
    const { metadata, config, log } = this.services;
    const wanted = new Map<string, string>();
    for (const s of await metadata.sources.list().catch(() => [])) {
      if (s.type !== 'filesystem' || s.status !== 'active' || s.enabled === false || s.config.watch !== true) continue;
      try {
        wanted.set(s.id, await checkFilesystemPath(String(s.config.path ?? ''), config));
      } catch (err) {
        log.warn({ err: errorMessage(err), sourceId: s.id }, 'a watched folder cannot be watched');
      }
    }
    for (const [id, w] of this.watchers) {
      if (wanted.get(id) !== w.path) {
        w.watcher.close();
        this.watchers.delete(id);
      }
    }
    for (const [id, dir] of wanted) {
      if (this.watchers.has(id)) continue;
      try {
        const entry = { path: dir, watcher: watch(dir, { recursive: true, persistent: false }) };
        entry.watcher.on('change', () => this.changed(id));
        entry.watcher.on('error', (err) => {
          log.warn({ err: errorMessage(err), sourceId: id }, 'watching a folder failed; it is watched again at the next check');
          entry.watcher.close();
          if (this.watchers.get(id) === entry) this.watchers.delete(id);
        });
        this.watchers.set(id, entry);
      } catch (err) {
        log.warn({ err: errorMessage(err), sourceId: id }, 'a watched folder cannot be watched');
      }
    }
  }

  /**
   * Every event asks; the job layer's SyncRequests coalesce a burst (one request in flight and one
   * waiting per source, nothing at all while the queued run is inside its window).
   */
  private changed(sourceId: string) {
    metrics.notifications.inc({ source_id: sourceId, source_type: 'filesystem', outcome: 'accepted' });
    if (this.closed) return;
    this.services.jobs.requestSync(sourceId, this.services.now())
      .catch((err) => this.services.log.warn({ err: errorMessage(err), sourceId }, 'a file change could not schedule a sync'));
  }

  /** Folders watched right now (tests and diagnostics). */
  watched(): string[] {
    return [...this.watchers.keys()];
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.watchers.values()) w.watcher.close();
    this.watchers.clear();
  }
}
