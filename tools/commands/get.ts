import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { openNode, type Values } from '../node.js';
import { UsageError } from '../options.js';

/** `spinet get URL`: Node's own http(s) client, its connection a spinet TCP socket; body to stdout. */
export async function get(values: Values, positionals: string[]): Promise<number> {
  const text = positionals[0];
  if (!text) throw new UsageError('which URL? spinet get http://HOST[:PORT]/PATH');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`not a URL: ${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`only http:// and https:// URLs: ${text}`);
  const secure = url.protocol === 'https:';
  const caFile = typeof values.ca === 'string' ? values.ca : undefined;
  if (caFile && !secure) throw new UsageError('--ca is for https:// URLs');
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      throw new UsageError(`--ca ${caFile}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
    }
  }
  const node = await openNode(values, (m) => console.error(m));
  try {
    const status = await new Promise<number>((resolve, reject) => {
      // Node's own clients over spinet's agents: TLS (and its certificate check, with --ca's CA
      // added to Node's) runs on a spinet socket exactly as it would on a kernel one.
      const agent = secure ? node.httpsAgent(ca ? { ca: [...rootCertificates, ca.toString()] } : {}) : node.agent;
      const req = (secure ? httpsRequest : request)(
        url,
        { agent, headers: { 'user-agent': 'spinet' } },
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
