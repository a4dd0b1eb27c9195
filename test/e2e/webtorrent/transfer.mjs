// A webtorrent client with DHT, LSD, uTP and web seeds off, so that peers can only be found
// through the tracker at ANNOUNCE and data can only come over WebRTC. Seeder and leecher run as
// separate processes (in one process they would share the tracker connection).
//   node transfer.mjs seed ANNOUNCE FILE         prints {"torrent": base64} when seeding
//   node transfer.mjs leech ANNOUNCE TORRENT OUT prints {"ok", "bytes", "wires", "ms"} when done
import {readFileSync} from 'node:fs'
import WebTorrent from 'webtorrent'
import wrtc from '@roamhq/wrtc'

const [mode, announce, a, b] = process.argv.slice(2)
const started = Date.now()
// No STUN servers: loopback only, and ICE gathering ends at once.
const client = new WebTorrent({
  dht: false,
  lsd: false,
  utp: false,
  webSeeds: false,
  natUpnp: false,
  natPmp: false,
  tracker: {wrtc, rtcConfig: {iceServers: []}},
})
const say = obj => process.stdout.write(JSON.stringify(obj) + '\n')
client.on('error', e => {
  say({ok: false, error: e.message})
  process.exit(1)
})
if (mode === 'seed') {
  client.seed(a, {announce: [announce]}, torrent => say({torrent: Buffer.from(torrent.torrentFile).toString('base64')}))
} else {
  client.add(readFileSync(a), {path: b, announce: [announce]}, t => {
    t.on('done', () => {
      say({ok: true, bytes: t.length, wires: t.wires.map(w => w.type), ms: Date.now() - started, file: t.files[0].path})
      setTimeout(() => process.exit(0), 100)
    })
  })
}
