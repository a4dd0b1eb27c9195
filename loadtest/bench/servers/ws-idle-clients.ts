// Opens N WebSocket connections to a WebTorrent tracker, each announcing once (a peer on one of
// 1000 torrents), prints "ready N" when all are answered, then holds them until killed.
// Usage: node ws-idle-clients.js URL N
import {randomBytes} from 'node:crypto'
import WebSocket from 'ws'

const [url, countText] = process.argv.slice(2)
const count = Number(countText)
const hashes = Array.from({length: 1000}, () => randomBytes(20).toString('latin1'))
let answered = 0
const sockets: WebSocket[] = []

async function open(i: number): Promise<void> {
  const ws = new WebSocket(url, {perMessageDeflate: false})
  sockets.push(ws)
  ws.on('error', error => {
    process.stderr.write(`connection ${i}: ${error.message}\n`)
    process.exit(1)
  })
  ws.on('message', () => {
    if (++answered === count) process.stdout.write(`ready ${count}\n`)
  })
  await new Promise<void>(resolve => ws.once('open', () => resolve()))
  ws.send(
    JSON.stringify({
      action: 'announce',
      info_hash: hashes[i % hashes.length],
      peer_id: randomBytes(20).toString('latin1'),
      left: 1,
      numwant: 0,
      uploaded: 0,
      downloaded: 0,
    }),
  )
}

// A few hundred handshakes at a time.
for (let i = 0; i < count; i += 200) await Promise.all(Array.from({length: Math.min(200, count - i)}, (_, k) => open(i + k)))
process.on('SIGTERM', () => process.exit(0))
