// The page script of the browser end-to-end test (browser-case.ts serves it with webtorrent's
// browser bundle). One webtorrent client per page; the test drives it over DevTools with
// seed(announce) and leech(magnet, announce), and polls `state` for their progress and results.
import WebTorrent from '/webtorrent.min.js'

// No STUN servers: host candidates only (loopback), and ICE gathering ends at once.
const client = new WebTorrent({tracker: {rtcConfig: {iceServers: []}}})
const state = {phase: 'idle', error: null, warnings: [], announces: 0, announcesAtDone: null}
globalThis.state = state
client.on('error', e => {
  state.error = String(e.message ?? e)
  console.error(`webtorrent error: ${state.error}`)
})

const hex = buf => Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, '0')).join('')
const sha1 = async bytes => hex(await crypto.subtle.digest('SHA-1', bytes))

function watch(torrent) {
  torrent.on('warning', e => {
    state.warnings.push(String(e.message ?? e))
    console.warn(`webtorrent warning: ${e.message ?? e}`)
  })
  torrent.on('trackerAnnounce', () => state.announces++)
  torrent.on('wire', wire => console.log(`wire: ${wire.type} ${wire.remoteAddress ?? ''}`))
}

/** Seeds /data.bin with `announce` as the only tracker; `state.seeded` is set after its first announce. */
globalThis.seed = announce => {
  state.phase = 'fetching'
  seed(announce).catch(e => (state.error = String(e.message ?? e)))
  return true
}

async function seed(announce) {
  const bytes = new Uint8Array(await (await fetch('/data.bin')).arrayBuffer())
  state.phase = 'hashing'
  let seeding
  const ready = new Promise(resolve => (seeding = resolve))
  // seed() returns the torrent at once: watch it before its first announce can happen.
  const torrent = client.seed(new File([bytes], 'data.bin'), {announce: [announce]}, seeding)
  watch(torrent)
  await ready
  state.phase = 'announcing'
  if (state.announces === 0) await new Promise(resolve => torrent.once('trackerAnnounce', resolve))
  state.seeded = {magnet: torrent.magnetURI, infoHash: torrent.infoHash, announce: torrent.announce, bytes: bytes.length, sha1: await sha1(bytes)}
  state.phase = 'seeding'
}

/** Starts downloading `magnet`; `state` shows the progress and, when done, the result. */
globalThis.leech = (magnet, announce) => {
  state.phase = 'metadata'
  const torrent = client.add(magnet, {announce: [announce]})
  watch(torrent)
  const progress = () => ({
    peers: torrent.numPeers,
    wires: torrent.wires.map(w => w.type),
    progress: torrent.progress,
    downloaded: torrent.downloaded,
    announce: torrent.announce,
  })
  globalThis.progress = progress
  torrent.on('metadata', () => (state.phase = 'downloading'))
  torrent.on('done', async () => {
    // webtorrent announces event=completed now; the test waits for the tracker's answer.
    state.announcesAtDone = state.announces
    state.phase = 'reading'
    try {
      const bytes = await torrent.files[0].arrayBuffer()
      state.result = {...progress(), name: torrent.files[0].name, bytes: bytes.byteLength, sha1: await sha1(bytes)}
      state.phase = 'done'
    } catch (e) {
      state.error = String(e.message ?? e)
    }
  })
  return true
}

globalThis.ready = true
