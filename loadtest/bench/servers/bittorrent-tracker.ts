// The bittorrent-tracker npm server (the JavaScript reference) on loopback, one protocol at a time.
// Usage: node bittorrent-tracker.js udp|http|ws PORT
import Server from 'bittorrent-tracker/server'

const [protocol, portText] = process.argv.slice(2)
const port = Number(portText)
const server = new Server({
  udp: protocol === 'udp',
  http: protocol === 'http' || protocol === 'ws',
  ws: protocol === 'ws',
  stats: false,
})
server.on('error', (error: Error) => process.stderr.write(`error: ${error.message}\n`))
server.on('warning', () => {})
const host = {http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1'}
server.listen(port, host as unknown as string, () => process.stdout.write(`listening ${port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
