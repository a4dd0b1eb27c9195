// The ceiling of any node:http tracker: `createServer` answering every request with a fixed
// 62-byte bencoded announce body (no parsing, no state). With CERT and KEY it serves HTTPS.
// Usage: node http-ceiling.js PORT [CERT KEY]
import {readFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'

const [portText, cert, key] = process.argv.slice(2)
const body = Buffer.from('d8:completei1e10:incompletei2e8:intervali1800e5:peers6:abcdefe')
const handler = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
  res.writeHead(200, {'content-type': 'text/plain', 'content-length': body.length})
  res.end(body)
}
const server = cert ? https.createServer({cert: readFileSync(cert), key: readFileSync(key)}, handler) : http.createServer(handler)
server.keepAliveTimeout = 180_000
server.listen(Number(portText), '127.0.0.1', () => process.stdout.write(`listening ${portText}\n`))
process.on('SIGTERM', () => process.exit(0))
