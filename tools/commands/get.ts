import { request, type RequestOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { openNode, type Values } from '../node.js';
import { UsageError } from '../options.js';

/** `spinet get URL`: Node's own http client, its connection a spinet TCP socket; body to stdout. */
export async function get(values: Values, positionals: string[]): Promise<number> {
  const text = positionals[0];
  if (!text) throw new UsageError('which URL? spinet get http://HOST[:PORT]/PATH');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`not a URL: ${text}`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`only http:// URLs (spinet has no TLS): ${text}`);
  const node = await openNode(values, (m) => console.error(m));
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port ? Number(url.port) : 80,
          path: url.pathname + url.search,
          headers: { host: url.host, 'user-agent': 'spinet' },
          // No `agent`: with one (even `agent: false`, which makes a fresh Agent) node:http would
          // dial through the Agent's own net.createConnection — the host's network, not spinet.
          createConnection: () => node.net.createConnection({ host: url.hostname, port: url.port ? Number(url.port) : 80 }) as unknown as Duplex,
        } as unknown as RequestOptions,
        (res) => {
          console.error(`HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}`);
          res.on('data', (chunk: Buffer) => process.stdout.write(chunk));
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('no response within 30 s'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
    return status >= 200 && status < 400 ? 0 : 1;
  } finally {
    await node.close();
  }
}
