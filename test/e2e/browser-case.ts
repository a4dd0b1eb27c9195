/**
 * One case of the browser end-to-end test, run as its own process so that browser.test.ts can
 * put it in a network namespace of its own (`unshare -n`: only loopback, so ICE sees nothing
 * else). Starts our WebTorrent tracker (bin/run.js serve ws), a local HTTP server with the page
 * and webtorrent's browser bundle, and two headless Chromiums; one seeds FILE, the other fetches
 * it by magnet through the tracker. Prints one JSON line (what each page reports) on success;
 * on failure or timeout, the reason with the tracker's and the browsers' output, and exits 1.
 *   node browser-case.js CHROMIUM WORKERS FILE DIR
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {killGroup, launchChromium, type CdpPage, type Chromium} from './cdp.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const bundle = join(root, 'test/e2e/webtorrent/node_modules/webtorrent/dist/webtorrent.min.js')
const pageScript = join(root, 'test/e2e/browser-page.js')
const html = '<!doctype html><meta charset="utf-8"><title>tracker browser e2e</title><script type="module" src="/browser-page.js"></script>\n'

/** Time limits of each step, in ms; their sum stays below browser.test.ts's limit per case. */
const LIMIT = {tracker: 15_000, launch: 20_000, page: 20_000, seed: 30_000, leech: 60_000}

export interface PageState {
  phase: string
  error: string | null
  warnings: string[]
  announces: number
  announcesAtDone: number | null
  seeded?: Seeded
  result?: Received
}
export interface Seeded {
  magnet: string
  infoHash: string
  announce: string[]
  bytes: number
  sha1: string
}
export interface Received {
  name: string
  bytes: number
  sha1: string
  peers: number
  wires: string[]
  announce: string[]
}
export interface CaseResult {
  tracker: string
  seeded: Seeded
  received: Received
  ms: {launch: number; seed: number; leech: number}
  /** The tracker's connections and swarm gauges by worker, once the leecher announced completion. */
  metrics: string[]
}

const [chromium, workers, file, dir] = process.argv.slice(2)
const cleanups: (() => unknown)[] = []
const cleanup = (): Promise<unknown> => Promise.all(cleanups.splice(0).map(c => c()))
/** Set by a signal: the steps that fail as the browsers go away then report nothing. */
let stopping = false
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, async () => {
    stopping = true
    process.stderr.write(`${signal}: stopping the browsers and the tracker\n${outputs()}\n`)
    await cleanup()
    process.exit(1)
  })

let trackerOut = ''
const browsers: {name: string; chromium?: Chromium; page?: CdpPage}[] = [{name: 'seeder'}, {name: 'leecher'}]

/** Everything the processes said, for a failure message. */
function outputs(): string {
  const parts = [`--- tracker (socket_workers = ${workers}) ---\n${trackerOut.slice(-6000)}`]
  for (const b of browsers) {
    parts.push(`--- ${b.name} page console ---\n${b.page?.consoleOutput().slice(-6000) ?? '(no page)'}`)
    // Chromium's stderr without its D-Bus complaints (there is no bus in a test environment).
    const stderr = (b.chromium?.stderr() ?? '(not started)').replace(/^.*dbus.*\n?/gm, '')
    parts.push(`--- ${b.name} chromium stderr ---\n${stderr.slice(-3000)}`)
  }
  return parts.join('\n')
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`)
    await sleep(200)
  }
}

/** Polls a page's `state` until `done`; fails on a webtorrent error or at the limit, with the last state seen. */
async function step(page: CdpPage, what: string, ms: number, done: (s: PageState) => boolean): Promise<PageState> {
  let last: PageState | undefined
  try {
    return await until(what, ms, async () => {
      last = await page.evaluate<PageState>('({...globalThis.state, ...globalThis.progress?.()})')
      if (last.error) throw new Error(`${what}: webtorrent: ${last.error}`)
      return done(last) ? last : undefined
    })
  } catch (e) {
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(last)}`)
  }
}

async function startTracker(): Promise<{url: string; metrics: string}> {
  const config = join(dir, 'ws.toml')
  writeFileSync(
    config,
    `socket_workers = ${workers}
log_level = "debug"
pid_file = "${join(dir, 'ws.pid')}"
[network]
address_ipv4 = "127.0.0.1:0"
use_ipv6 = false
[metrics]
prometheus_endpoint_address = "127.0.0.1:0"
`,
  )
  const child: ChildProcess = spawn(process.execPath, [join(root, 'bin/run.js'), 'serve', 'ws', '-c', config], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  cleanups.push(() => killGroup(child))
  child.stdout!.on('data', d => (trackerOut += d))
  child.stderr!.on('data', d => (trackerOut += d))
  return until('the tracker listens', LIMIT.tracker, async () => {
    if (child.exitCode !== null) throw new Error(`the tracker exited (${child.exitCode})`)
    const url = /ws tracker listening: (ws:\/\/[\d.]+:\d+)/.exec(trackerOut)?.[1]
    const metrics = /ws tracker listening: metrics (http:\/\/\S+)/.exec(trackerOut)?.[1]
    return url && metrics ? {url, metrics} : undefined
  })
}

/** The page, the page script, the bundle and the file to seed, on 127.0.0.1 (ephemeral port). */
async function serveFiles(): Promise<string> {
  const files: Record<string, [string, Buffer | string]> = {
    '/': ['text/html', html],
    '/browser-page.js': ['text/javascript', readFileSync(pageScript)],
    '/webtorrent.min.js': ['text/javascript', readFileSync(bundle)],
    '/data.bin': ['application/octet-stream', readFileSync(file)],
  }
  const server: Server = createServer((req, res) => {
    const f = files[req.url ?? '']
    if (!f) return res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end()
    res.writeHead(200, {'content-type': f[0], 'cache-control': 'no-store'}).end(f[1])
  })
  cleanups.push(() => server.close())
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function openBrowser(b: (typeof browsers)[number], origin: string): Promise<CdpPage> {
  const profile = join(dir, `profile-${b.name}`)
  mkdirSync(profile)
  // Loopback host candidates: Chromium offers 127.0.0.1 only with this flag *and* a page
  // allowed to capture audio (otherwise it hides host addresses, and there is no STUN here).
  b.chromium = await launchChromium(chromium, profile, ['--allow-loopback-in-peer-connection'], LIMIT.launch)
  cleanups.push(() => b.chromium?.kill())
  await b.chromium.cdp.send('Browser.grantPermissions', {origin, permissions: ['audioCapture']})
  b.page = await b.chromium.newPage()
  await b.page.send('Page.navigate', {url: `${origin}/`})
  const page = b.page
  await until(`the ${b.name} page loads webtorrent`, LIMIT.page, async () => ((await page.evaluate<boolean>('globalThis.ready === true')) ? true : undefined))
  return page
}

async function run(): Promise<CaseResult> {
  const t0 = Date.now()
  const {url: tracker, metrics} = await startTracker()
  const origin = await serveFiles()
  const [seeder, leecher] = await Promise.all(browsers.map(b => openBrowser(b, origin)))
  const t1 = Date.now()
  await seeder.evaluate(`seed(${JSON.stringify(tracker)})`)
  const {seeded} = await step(seeder, 'the seeder seeds and announces', LIMIT.seed, s => s.phase === 'seeding')
  const t2 = Date.now()
  await leecher.evaluate(`leech(${JSON.stringify(seeded!.magnet)}, ${JSON.stringify(tracker)})`)
  // Done, and the tracker has answered the announce with event=completed that followed.
  const {result} = await step(leecher, 'the leecher downloads', LIMIT.leech, s => s.phase === 'done' && s.announces > s.announcesAtDone!)
  const ms = {launch: t1 - t0, seed: t2 - t1, leech: Date.now() - t2}
  const gauges = (await (await fetch(metrics)).text()).split('\n').filter(l => /^tracker_(connections|torrents|seeders|leechers)\{/.test(l))
  return {tracker, seeded: seeded!, received: result!, ms, metrics: gauges}
}

try {
  const result = await run()
  process.stdout.write(`${JSON.stringify(result)}\n`)
  await cleanup()
  process.exit(0)
} catch (e) {
  if (!stopping) {
    process.stderr.write(`${(e as Error).message}\n${outputs()}\n`)
    await cleanup()
    process.exit(1)
  }
}
