// The ceiling of a ws + JSON WebTorrent tracker: `ws` server, JSON.parse of every message, a fixed
// announce reply, each offer relayed (JSON.stringify) to a random other connection of the torrent,
// each answer to the connection of its to_peer_id. No validation, no bookkeeping, no limits.
// Usage: node ws-ceiling.js PORT
import {WebSocketServer, type WebSocket} from 'ws'

const port = Number(process.argv[2])
const torrents = new Map<string, WebSocket[]>()
const byPeerId = new Map<string, WebSocket>()
const wss = new WebSocketServer({host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false}, () => process.stdout.write(`listening ${port}\n`))

wss.on('connection', ws => {
  ws.on('message', data => {
    // biome-ignore lint/suspicious/noExplicitAny: the ceiling reads JSON as it comes, like a server without validation
    const m = JSON.parse(data.toString()) as any
    if (m.action === 'scrape') {
      ws.send(JSON.stringify({action: 'scrape', files: {}}))
      return
    }
    let list = torrents.get(m.info_hash)
    if (!list) torrents.set(m.info_hash, (list = []))
    byPeerId.set(m.peer_id, ws)
    if (!list.includes(ws)) list.push(ws)
    ws.send(JSON.stringify({action: 'announce', interval: 120, info_hash: m.info_hash, complete: 1, incomplete: 1}))
    for (const o of m.offers ?? []) {
      const to = list[Math.floor(Math.random() * list.length)]
      if (to !== ws) to.send(JSON.stringify({action: 'announce', info_hash: m.info_hash, peer_id: m.peer_id, offer_id: o.offer_id, offer: o.offer}))
    }
    if (m.answer)
      byPeerId.get(m.to_peer_id)?.send(JSON.stringify({action: 'announce', info_hash: m.info_hash, peer_id: m.peer_id, offer_id: m.offer_id, answer: m.answer}))
  })
})
process.on('SIGTERM', () => process.exit(0))
