/**
 * End to end: real BitTorrent clients move a real file through our trackers, byte-identical.
 * Debian's transmission-cli seeds (it only accepts connections on loopback), aria2c and rtorrent
 * leech (they dial); libtorrent-rasterbar (python3-libtorrent, the engine of qBittorrent and
 * Deluge) seeds and leeches over UDP and HTTP on IPv6. Run with `npm run test:e2e`; `.ci/run` installs
 * the clients.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {randomFillSync} from 'node:crypto'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {makeCertificate} from '../certs.js'
import {tempDir} from '../harness.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const bin = join(root, 'bin/run.js')
const TRANSFER_TIMEOUT_MS = 120_000

const missing = ['transmission-cli', 'aria2c', 'mktorrent', 'rtorrent', 'openssl'].filter(c => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
const skip =
  missing.length > 0 ? `not installed: ${missing.join(', ')} (apt-get install transmission-cli aria2 mktorrent rtorrent openssl; .ci/run does)` : false
// Debian's module is built for Debian's python3, which need not be the first on PATH.
const SYSTEM_PYTHON = '/usr/bin/python3'
const LIBTORRENT_PEER = join(root, 'test/e2e/libtorrent-peer.py')
const skipLibtorrent =
  spawnSync(SYSTEM_PYTHON, ['-c', 'import libtorrent']).status !== 0
    ? 'python3-libtorrent is not installed (apt-get install python3-libtorrent; .ci/run does)'
    : skip

// Below Linux's ephemeral range (32768-60999), where a client's outgoing connection could hold
// the port a tracker or client is about to listen on.
let nextPort = 21_000 + (process.pid % 100) * 100
const port = () => nextPort++

interface Proc {
  name: string
  child: ChildProcess
  log: () => string
}

function run(name: string, cmd: string, args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv} = {}): Proc {
  const child = spawn(cmd, args, {cwd: options.cwd, env: {...process.env, ...options.env}, stdio: ['ignore', 'pipe', 'pipe']})
  let log = ''
  child.stdout!.on('data', d => (log = (log + d).slice(-20_000)))
  child.stderr!.on('data', d => (log = (log + d).slice(-20_000)))
  return {name, child, log: () => log}
}

/** The end of every process's output, for a failure message. */
const logs = (procs: Proc[]): string => procs.map(p => `----- ${p.name} -----\n${p.log().slice(-4000)}`).join('\n')

function stop(p: Proc): void {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
}

const exited = (p: Proc, ms: number): Promise<number | null> =>
  new Promise(resolve => {
    if (p.child.exitCode !== null) return resolve(p.child.exitCode)
    const timer = setTimeout(() => resolve(null), ms)
    p.child.once('exit', code => {
      clearTimeout(timer)
      resolve(code)
    })
  })

async function metric(url: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(url, {signal: AbortSignal.timeout(2000)})).text()
    return text
      .split('\n')
      .filter(l => l.startsWith(name))
      .reduce((s, l) => s + Number(l.split(' ').pop()), 0)
  } catch {
    return 0
  }
}

interface Setup {
  protocol: 'udp' | 'http'
  /** The tracker URL host: 127.0.0.1 or [::1]. */
  host: string
  tls?: boolean
  /** transmission-cli unless told. */
  seeder?: 'transmission' | 'libtorrent'
  leecher: 'aria2c' | 'rtorrent' | 'libtorrent'
}

async function transfer(s: Setup): Promise<void> {
  const dir = tempDir('tracker-e2e-')
  const procs: Proc[] = []
  try {
    // The file and its torrent.
    const seedDir = join(dir, 'seed')
    const leechDir = join(dir, 'leech')
    mkdirSync(seedDir)
    mkdirSync(leechDir)
    const data = Buffer.alloc(5 * 1024 * 1024)
    randomFillSync(data)
    writeFileSync(join(seedDir, 'data.bin'), data)
    const trackerPort = port()
    const metricsPort = port()
    const scheme = s.protocol === 'udp' ? 'udp' : s.tls ? 'https' : 'http'
    const url = `${scheme}://${s.host}:${trackerPort}${s.protocol === 'http' ? '/announce' : ''}`
    const torrent = join(dir, 'data.torrent')
    execFileSync('mktorrent', ['-p', '-a', url, '-o', torrent, join(seedDir, 'data.bin')], {stdio: 'ignore'})

    // Our tracker, with a short announce interval.
    const cert = s.tls ? makeCertificate(dir, 'localhost') : undefined
    const config = join(dir, 'tracker.toml')
    writeFileSync(
      config,
      `log_level = "debug"
pid_file = "${join(dir, 'tracker.pid')}"
[network]
address_ipv4 = "127.0.0.1:${trackerPort}"
address_ipv6 = "[::1]:${trackerPort}"
${cert ? `enable_tls = true\ntls_certificate_path = "${cert.cert}"\ntls_private_key_path = "${cert.key}"` : ''}
[protocol]
peer_announce_interval = 5
[metrics]
prometheus_endpoint_address = "127.0.0.1:${metricsPort}"
`,
    )
    const tracker = run('tracker', process.execPath, [bin, 'serve', s.protocol, '-c', config])
    procs.push(tracker)
    const metrics = `http://127.0.0.1:${metricsPort}/metrics`
    let up = false
    for (
      let i = 0;
      i < 100 &&
      !(up = await fetch(metrics).then(
        () => true,
        () => false,
      ));
      i++
    )
      await sleep(100)
    if (!up) throw new Error(`the tracker did not come up within 10 s\n${logs(procs)}`)

    // The seeder: transmission-cli, made to trust our certificate for HTTPS, or libtorrent.
    const peerHost = s.host.replace(/^\[|\]$/g, '')
    const seeder =
      s.seeder === 'libtorrent'
        ? run('libtorrent (seeder)', SYSTEM_PYTHON, [LIBTORRENT_PEER, 'seed', torrent, seedDir, peerHost, String(port())])
        : run('transmission-cli (seeder)', 'transmission-cli', ['-g', join(dir, 'tr'), '-w', seedDir, '-p', String(port()), '-M', torrent], {
            env: cert ? {CURL_CA_BUNDLE: cert.cert} : {},
          })
    procs.push(seeder)
    for (let i = 0; i < 600 && (await metric(metrics, 'tracker_seeders')) < 1; i++) await sleep(100)
    if ((await metric(metrics, 'tracker_seeders')) < 1) {
      throw new Error(`the seeder did not announce within 60 s\n${logs(procs)}`)
    }

    // The leecher, which dials the seeder.
    let leecher: Proc
    if (s.leecher === 'aria2c') {
      const dht = s.protocol === 'udp' // aria2c speaks UDP to trackers only through its DHT socket
      leecher = run('aria2c (leecher)', 'aria2c', [
        `--dir=${leechDir}`,
        '--seed-time=0',
        '--bt-enable-lpd=false',
        '--enable-peer-exchange=false',
        `--listen-port=${port()}`,
        '--summary-interval=0',
        '--console-log-level=notice',
        `--enable-dht=${dht}`,
        `--enable-dht6=${dht && s.host !== '127.0.0.1'}`,
        `--dht-listen-port=${port()}`,
        ...(cert ? [`--ca-certificate=${cert.cert}`] : []),
        torrent,
      ])
    } else if (s.leecher === 'libtorrent') {
      leecher = run('libtorrent (leecher)', SYSTEM_PYTHON, [LIBTORRENT_PEER, 'leech', torrent, leechDir, peerHost, String(port())])
    } else {
      const rt = join(dir, 'rt')
      mkdirSync(join(rt, 'session'), {recursive: true})
      mkdirSync(join(rt, 'watch'))
      const p = port()
      writeFileSync(
        join(rt, 'rtorrent.rc'),
        `directory.default.set = ${leechDir}
session.path.set = ${join(rt, 'session')}
network.port_range.set = ${p}-${p}
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = yes
system.daemon.set = true
schedule2 = watch_directory,1,1,load.start=${join(rt, 'watch')}/*.torrent
`,
      )
      writeFileSync(join(rt, 'watch', 'data.torrent'), readFileSync(torrent))
      leecher = run('rtorrent (leecher)', 'rtorrent', ['-n', '-o', `import=${join(rt, 'rtorrent.rc')}`])
    }
    procs.push(leecher)
    const deadline = Date.now() + TRANSFER_TIMEOUT_MS
    let done = false
    while (!done && Date.now() < deadline) {
      await sleep(500)
      try {
        done = readFileSync(join(leechDir, 'data.bin')).equals(data)
      } catch {
        // not there yet
      }
      if (s.leecher !== 'rtorrent' && leecher.child.exitCode !== null && !done) break
    }
    if (!done) {
      throw new Error(`no byte-identical copy within ${TRANSFER_TIMEOUT_MS / 1000} s\n${logs(procs)}`)
    }
    if (s.leecher !== 'rtorrent') assert.equal(await exited(leecher, 20_000), 0, leecher.log().slice(-2000))
    if (s.host.startsWith('[')) {
      // Every request came over IPv6 (the torrent names only the IPv6 address).
      const requests = await fetch(metrics).then(r => r.text())
      const count = (v: 4 | 6) =>
        requests
          .split('\n')
          .filter(l => l.startsWith('tracker_requests_total{') && l.includes(`ip_version="${v}"`))
          .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
      assert.ok(count(6) >= 2 && count(4) === 0, `IPv6 requests ${count(6)}, IPv4 requests ${count(4)}`)
    }
  } finally {
    procs.forEach(stop)
  }
}

test('UDP tracker (IPv4): transmission-cli seeds, aria2c downloads a byte-identical file', {skip}, () =>
  transfer({protocol: 'udp', host: '127.0.0.1', leecher: 'aria2c'}),
)
test('HTTP tracker (IPv4): transmission-cli seeds, aria2c downloads', {skip}, () => transfer({protocol: 'http', host: '127.0.0.1', leecher: 'aria2c'}))
test('HTTPS tracker (self-signed, trusted by both clients): transmission-cli seeds, aria2c downloads', {skip}, () =>
  transfer({protocol: 'http', host: '127.0.0.1', tls: true, leecher: 'aria2c'}),
)
test('HTTP tracker over IPv6 [::1]: transmission-cli seeds, aria2c downloads', {skip}, () => transfer({protocol: 'http', host: '[::1]', leecher: 'aria2c'}))
// UDP over IPv6 takes libtorrent: Transmission opens its IPv6 UDP socket only with a public IPv6
// address and then reads UDP announce replies as 6-byte IPv4 peers even over IPv6; aria2c sends
// UDP tracker traffic from its IPv4 DHT socket only (see the README's client notes).
test('UDP tracker over IPv6 [::1]: libtorrent seeds, libtorrent downloads', {skip: skipLibtorrent}, () =>
  transfer({protocol: 'udp', host: '[::1]', seeder: 'libtorrent', leecher: 'libtorrent'}),
)
test('HTTP tracker over IPv6 [::1]: libtorrent seeds, libtorrent downloads', {skip: skipLibtorrent}, () =>
  transfer({protocol: 'http', host: '[::1]', seeder: 'libtorrent', leecher: 'libtorrent'}),
)
test('HTTP tracker: transmission-cli seeds, rtorrent (headless) downloads', {skip}, () => transfer({protocol: 'http', host: '127.0.0.1', leecher: 'rtorrent'}))
test('UDP tracker: transmission-cli seeds, rtorrent (headless) downloads', {skip}, () => transfer({protocol: 'udp', host: '127.0.0.1', leecher: 'rtorrent'}))
