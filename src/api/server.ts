import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

/** Longer than the idle timeout of common load balancers and HTTP client pools (60 s). */
const KEEP_ALIVE_MS = 65_000;

/**
 * The HTTP server for the app. An idle keep-alive connection is kept longer than the clients and
 * proxies in front of it keep theirs, so the server is never the side that closes a connection a
 * client is just reusing (which the client sees as ECONNRESET on a good request).
 */
export function listen(app: { fetch: (req: Request, ...rest: never[]) => Response | Promise<Response> }, opts: { port: number; hostname: string }): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch as (req: Request) => Response | Promise<Response>, port: opts.port, hostname: opts.hostname }, (info: AddressInfo) => {
      resolve({ server, port: info.port, close: () => new Promise<void>((done) => { server.close(() => done()); server.closeIdleConnections?.(); }) });
    }) as Server;
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.headersTimeout = KEEP_ALIVE_MS + 1_000;
    server.once('error', reject);
  });
}
