// The upstream behind Envoy in the end-to-end scenario: answers 200 "ok" at once, so the
// latency measured is Envoy's and the filters'.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? '0');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close());
