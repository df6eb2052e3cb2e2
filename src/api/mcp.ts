import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { fetchDocument } from '../retrieval/documents.ts';
import { resolveAgent, runSearch, searchBodySchema } from './assistant.ts';
import { SEARCH_MODES } from '../retrieval/fusion.ts';
import type { AppEnv } from './env.ts';

/** The MCP endpoint, mounted by the app at /mcp. */
export function mcpRoutes() {
  const r = new Hono<AppEnv>();
  r.all('/', (c) => handleMcp(c));
  return r;
}

/**
 * MCP over streamable HTTP, stateless: every request gets its own server bound to the caller's
 * context, so the tool can never run with another request's identity.
 */
export async function handleMcp(c: Context<AppEnv>): Promise<Response> {
  const ctx = c.get('ctx');
  const agentKey = c.req.header('x-agent-key');
  const server = new McpServer({ name: 'clearance', version: '0.1.0' });
  server.registerTool(
    'search',
    {
      title: 'Search permitted documents',
      description: 'Semantic search over the organisation\'s documents that the current user may read. Returns matching passages with title, URL, freshness and score.',
      inputSchema: {
        query: z.string().min(1).describe('What to look for, in natural language'),
        topK: z.number().int().min(1).max(100).optional().describe('How many passages to return (default 10)'),
        mode: z.enum(SEARCH_MODES).optional().describe('hybrid (default): meaning and exact words fused; vector: meaning only; keyword: BM25 on exact words, e.g. ticket numbers and error codes'),
        sourceIds: z.array(z.string()).optional().describe('Restrict to these source ids'),
        freshOnly: z.boolean().optional().describe('Leave out documents past their review date'),
      },
    },
    async (args) => {
      const body = searchBodySchema.parse({
        query: args.query,
        topK: args.topK ?? 10,
        mode: args.mode,
        filter: args.sourceIds || args.freshOnly ? { sourceIds: args.sourceIds, freshOnly: args.freshOnly } : undefined,
      });
      const results = await runSearch(ctx, body, agentKey, 'mcp.search');
      return {
        content: [{ type: 'text' as const, text: JSON.stringify({ results }, null, 2) }],
        structuredContent: { results },
      };
    },
  );
  server.registerTool(
    'fetch_document',
    {
      title: 'Fetch a permitted document',
      description: 'The full text of one document the current user may read (by the documentId a search returned), as its chunks in order, with title, URL and freshness.',
      inputSchema: { documentId: z.string().min(1).max(200).describe('A documentId from search results') },
    },
    async (args) => {
      const agent = await resolveAgent(ctx, agentKey, { action: 'mcp.fetch_document', target: args.documentId });
      const document = await fetchDocument({ ctx, input: { documentId: args.documentId, agent, auditAction: 'mcp.fetch_document' } });
      return {
        content: [{ type: 'text' as const, text: `# ${document.title}\n${document.url ?? ''}\n\n${document.chunks.map((ch) => ch.text).join('\n\n')}` }],
        structuredContent: { document },
      };
    },
  );
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  try {
    return await transport.handleRequest(c.req.raw);
  } finally {
    void server.close();
  }
}
