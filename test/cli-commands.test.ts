/** The CLI as a user runs it: real processes of bin/run.js. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {stripVTControlCharacters} from 'node:util'
import {spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {readdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import dgram from 'node:dgram'
import {createConnection, createServer} from 'node:net'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {parse as parseToml} from 'smol-toml'
import {defaultsOf, udpSchema} from '../src/config/index.js'
import {requestReload} from '../src/accesslist/client.js'
import {readStatus, statusPathFor} from '../src/process/status.js'
import {checkTracker} from '../src/process/tracker-process.js'
import {tempDir, UdpClient} from './harness.js'

/** smol-toml makes null-prototype objects; compare plain data. */
const parse = (text: string): unknown => JSON.parse(JSON.stringify(parseToml(text)))
import {nastyId} from './helpers.js'
import {makeCertificate} from './certs.js'
import {httpGet} from './http-client.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const bin = join(root, 'bin/run.js')

function run(args: string[], options: {cwd?: string} = {}): {code: number | null; stdout: string; stderr: string} {
  const r = spawnSync(process.execPath, [bin, ...args], {cwd: options.cwd ?? root, encoding: 'utf8', timeout: 30_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

/** oclif wraps error lines at the terminal width and prefixes them with " ›   ". */
const oneLine = (text: string): string => text.replace(/\s*\n\s*›\s*/g, ' ')

const noStack = (text: string): void => assert.doesNotMatch(text, /^\s+at /m, `no stack trace in:\n${text}`)

test('--version names the version and the commit; --help lists every topic', () => {
  const v = run(['--version'])
  assert.equal(v.code, 0)
  assert.match(v.stdout, /^tracker \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}|unknown)\)/)
  const h = run(['--help'])
  assert.equal(h.code, 0)
  for (const topic of ['serve', 'config', 'loadtest', 'accesslist']) assert.match(h.stdout, new RegExp(`^\\s+${topic}\\s`, 'm'), topic)
})

test('config print: the defaults; with -c and flags the merged config; bad files exit 1 without a stack', () => {
  const p = run(['config', 'print', 'udp'])
  assert.equal(p.code, 0)
  assert.deepEqual(parse(p.stdout), defaultsOf(udpSchema))
  const dir = tempDir()
  const good = join(dir, 'good.toml')
  writeFileSync(good, '[protocol]\nmax_response_peers = 77\n')
  const merged = parse(run(['config', 'print', 'udp', '-c', good, '--workers', '4']).stdout) as {socket_workers: number; protocol: {max_response_peers: number}}
  assert.equal(merged.protocol.max_response_peers, 77)
  assert.equal(merged.socket_workers, 4)
  const bad = join(dir, 'bad.toml')
  writeFileSync(bad, '[network]\nuse_ipv5 = true\n')
  for (const args of [
    ['config', 'print', 'udp', '-c', bad],
    ['serve', 'udp', '-c', bad],
    ['loadtest', 'udp', '-c', bad, '--duration', '1'],
  ]) {
    const r = run(args)
    assert.equal(r.code, 1, args.join(' '))
    assert.match(r.stderr, /bad\.toml/)
    assert.match(r.stderr, /network\.use_ipv5/)
    noStack(r.stderr)
  }
  const range = join(dir, 'range.toml')
  writeFileSync(range, '[cleaning]\nmax_connection_age = 0\n')
  const r = run(['serve', 'udp', '-c', range])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cleaning\.max_connection_age = 0 is not valid: expected/)
  noStack(r.stderr)
})

test('oclif.manifest.json is current (run `npm run manifest` after changing commands)', async () => {
  const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, {flags: Record<string, unknown>; args: Record<string, unknown>}>
  }
  const commandsDir = join(root, 'dist/commands')
  const files: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e)
      if (statSync(p).isDirectory()) walk(p)
      else if (e.endsWith('.js')) files.push(p)
    }
  }
  walk(commandsDir)
  const ids = files.map(f => relative(commandsDir, f).replace(/\.js$/, '').split('/').join(':')).sort()
  const hint = 'oclif.manifest.json is stale: run `npm run manifest` and commit it'
  assert.deepEqual(Object.keys(manifest.commands).sort(), ids, hint)
  for (const f of files) {
    const id = relative(commandsDir, f).replace(/\.js$/, '').split('/').join(':')
    const cmd = (await import(f)).default as {flags?: Record<string, unknown>; args?: Record<string, unknown>}
    assert.deepEqual(Object.keys(manifest.commands[id].flags).sort(), Object.keys(cmd.flags ?? {}).sort(), `${id}: ${hint}`)
    assert.deepEqual(Object.keys(manifest.commands[id].args ?? {}).sort(), Object.keys(cmd.args ?? {}).sort(), `${id}: ${hint}`)
  }
})

/** Two ports of this test process on loopback (the tracker of a test, and a second one). */
const PORT = 20_000 + (process.pid % 5000) * 2

/** A config of a tracker in `dir` (pid file `dir`/tracker.pid, list `dir`/list.txt) on loopback. */
function serveConfig(dir: string, protocol: 'udp' | 'http', port: number, network = '', name: string = protocol): string {
  const config = join(dir, `${name}.toml`)
  writeFileSync(
    config,
    `log_level = "info"
pid_file = "${join(dir, 'tracker.pid')}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
${network}
[metrics]
prometheus_endpoint_address = "127.0.0.1:0"
[access_list]
mode = "allow"
path = "${join(dir, 'list.txt')}"
`,
  )
  return config
}

interface ServeOptions {
  cwd?: string
  script?: string
  /** More flags after `-c FILE`. */
  args?: string[]
}

/** A `tracker serve` process; `exited` gives its exit code, `output` what it wrote, `stderr` its stderr alone. */
function spawnServe(protocol: string, config: string, options: ServeOptions = {}) {
  const child = spawn(process.execPath, [options.script ?? bin, 'serve', protocol, '-c', config, ...(options.args ?? [])], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let stderr = ''
  child.stdout.on('data', d => (output += d))
  child.stderr.on('data', d => {
    output += d
    stderr += d
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  return {child, exited, output: () => output, stderr: () => stderr}
}

/** A real `tracker serve` process on loopback ephemeral-ish ports, in its own directory. */
async function startServe(dir: string, accessList: string, protocol: 'udp' | 'http' = 'udp', network = '', options: ServeOptions = {}) {
  const port = PORT
  writeFileSync(join(dir, 'list.txt'), accessList)
  const config = serveConfig(dir, protocol, port, network)
  const t = spawnServe(protocol, config, options)
  for (let i = 0; i < 200 && !readStatus(join(dir, 'tracker.pid')); i++) await sleep(50)
  assert.ok(readStatus(join(dir, 'tracker.pid')), `tracker started:\n${t.output()}`)
  return {...t, config, port}
}

test('accesslist reload against a running tracker: success, then a bad file keeps the old list', async () => {
  const dir = tempDir()
  const [a, b] = [nastyId(), nastyId()]
  const hex = (h: Uint8Array) => Buffer.from(h).toString('hex')
  const t = await startServe(dir, `# first list\n${hex(a)}\n`)
  const client = await UdpClient.open(4, t.port)
  try {
    // `tracker accesslist reload` and older readers read these lines.
    const listening = readStatus(join(dir, 'tracker.pid'))!.listening
    assert.equal(listening.length, 2, listening.join('\n'))
    assert.match(listening[0], new RegExp(`^udp 127\\.0\\.0\\.1:${t.port} \\((batched I/O|node:dgram)\\)$`))
    assert.match(listening[1], /^metrics http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    await client.connect()
    const announce = async (h: Uint8Array) => (await client.request(client.announceBytes({infoHash: h, peerId: nastyId(), port: 1000}))).action
    assert.equal(await announce(a), 1)
    assert.equal(await announce(b), 3, 'b is not listed yet')

    writeFileSync(join(dir, 'list.txt'), `${hex(a)}\n${hex(b).toUpperCase()}\n`)
    const ok = run(['accesslist', 'reload', '-c', t.config])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /2 entries/)
    assert.equal(await announce(b), 1, 'b allowed after the reload')

    writeFileSync(join(dir, 'list.txt'), `${hex(a)}\nnot-a-hash\n`)
    const bad = run(['accesslist', 'reload', '--pid', join(dir, 'tracker.pid')])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /line 2/)
    assert.match(bad.stderr, /not-a-hash/)
    assert.match(bad.stderr, /previous list stays in force/)
    noStack(bad.stderr)
    assert.equal(await announce(b), 1, 'the old list (with b) is still enforced')

    const none = run(['accesslist', 'reload', '--pid', join(dir, 'missing.pid')])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /no pid file at .*missing\.pid/)
  } finally {
    client.close()
    t.child.kill('SIGTERM')
    await t.exited
  }
})

test('serve http with TLS: bad files refuse to start; accesslist reload reports a failed certificate reload', async () => {
  const dir = tempDir()
  const {cert, key} = makeCertificate(dir, 'cli')
  const missing = join(dir, 'http-missing.toml')
  writeFileSync(missing, `[network]\nenable_tls = true\ntls_certificate_path = "${join(dir, 'nope.crt')}"\ntls_private_key_path = "${key}"\n`)
  const r = run(['serve', 'http', '-c', missing])
  assert.equal(r.code, 1)
  assert.match(oneLine(r.stderr), /nope\.crt \(\[network\] tls_certificate_path\): no such file/)
  noStack(r.stderr)

  const t = await startServe(
    dir,
    `${nastyId().toString('hex')}\n`,
    'http',
    `enable_tls = true\ntls_certificate_path = "${cert}"\ntls_private_key_path = "${key}"`,
  )
  try {
    // No --protocol: enable_tls says HTTP or WS, and the pid file is in the file.
    const ok = run(['accesslist', 'reload', '-c', t.config])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /1 entries/)
    writeFileSync(cert, 'garbage')
    const bad = run(['accesslist', 'reload', '--protocol', 'http', '-c', t.config])
    assert.equal(bad.code, 1)
    assert.match(oneLine(bad.stderr), /TLS reload failed, old certificate kept: .*cli\.crt/)
    noStack(bad.stderr)
    const reply = await httpGet(t.port, '/scrape?info_hash=' + '%00'.repeat(20), {tls: true})
    assert.equal(reply.status, 200, 'still serving HTTPS with the old certificate')
  } finally {
    t.child.kill('SIGTERM')
    assert.equal(await t.exited, 0)
  }
})

test('serve on an address in use exits 1 naming the address and its config key, with a hint; no stack', async () => {
  const dir = tempDir()
  writeFileSync(join(dir, 'list.txt'), '')
  const busy = PORT + 1
  const udpHolder = dgram.createSocket('udp4')
  const tcpHolder = createServer()
  await new Promise<void>(resolve => udpHolder.bind(busy, '127.0.0.1', resolve))
  await new Promise<void>(resolve => tcpHolder.listen(busy, '127.0.0.1', resolve))
  const hint = /Another process \(perhaps another tracker\) holds that address/
  try {
    for (const batched of [true, false]) {
      const r = run(['serve', 'udp', '-c', serveConfig(dir, 'udp', busy, `batched_io = ${batched}`, `udp-${batched}`)])
      assert.equal(r.code, 1)
      assert.match(oneLine(r.stderr), new RegExp(`could not bind UDP 127\\.0\\.0\\.1:${busy} \\(\\[network\\] address_ipv4\\): `))
      assert.match(oneLine(r.stderr), hint, `batched_io = ${batched}`)
      noStack(r.stderr)
    }
    for (const [batched, reason] of [
      [true, 'bind: Address already in use'],
      [false, 'listen EADDRINUSE'],
    ] as const) {
      const http = run(['serve', 'http', '-c', serveConfig(dir, 'http', busy, `batched_io = ${batched}`, `http-${batched}`)])
      assert.equal(http.code, 1)
      assert.match(oneLine(http.stderr), new RegExp(`could not bind TCP 127\\.0\\.0\\.1:${busy} \\(\\[network\\] address_ipv4\\): ${reason}`))
      assert.match(oneLine(http.stderr), hint)
      assert.match(http.stderr, /choose another address with --ipv4 ADDR:PORT or \[network\] address_ipv4 in the config\./)
      noStack(http.stderr)
    }
    const metrics = serveConfig(dir, 'udp', PORT, '', 'metrics')
    writeFileSync(metrics, readFileSync(metrics, 'utf8').replace('"127.0.0.1:0"', `"127.0.0.1:${busy}"`))
    const m = run(['serve', 'udp', '-c', metrics])
    assert.equal(m.code, 1)
    assert.match(
      oneLine(m.stderr),
      new RegExp(`could not serve metrics on 127\\.0\\.0\\.1:${busy} \\(\\[metrics\\] prometheus_endpoint_address\\): listen EADDRINUSE`),
    )
    const metricsHint =
      /another tracker of this protocol, whose metrics default to the same port\) holds that address: stop it, or move this tracker's metrics endpoint with --metrics ADDR:PORT or \[metrics\] prometheus_endpoint_address in the config\./
    assert.match(oneLine(m.stderr), metricsHint)
    noStack(m.stderr)
    // The same port given with --metrics (localhost is 127.0.0.1): the same hint.
    const flagged = run(['serve', 'udp', '-c', serveConfig(dir, 'udp', PORT, '', 'metrics-flag'), '--metrics', `localhost:${busy}`])
    assert.equal(flagged.code, 1)
    assert.match(flagged.stderr, new RegExp(`could not serve metrics on 127\\.0\\.0\\.1:${busy} `))
    assert.match(flagged.stderr, metricsHint)
  } finally {
    udpHolder.close()
    tcpHolder.close()
  }
})

test('SIGUSR1 does not open the inspector; SIGTERM exits 0 and removes the pid file', async () => {
  const dir = tempDir()
  const t = await startServe(dir, '')
  t.child.kill('SIGUSR1')
  await sleep(500)
  const inspector = await new Promise<boolean>(resolve => {
    const s = createConnection({host: '127.0.0.1', port: 9229}, () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
  assert.equal(inspector, false, 'nothing listens on 9229')
  assert.doesNotMatch(t.output(), /Debugger listening/)
  t.child.kill('SIGTERM')
  assert.equal(await t.exited, 0)
  assert.throws(() => statSync(join(dir, 'tracker.pid')), /ENOENT/)
})

test('loadtest udp against a running tracker prints a summary; --json parses', async () => {
  const dir = tempDir()
  const t = await startServe(dir, '')
  try {
    // An access list in allow mode with no entries refuses every announce: the run must count those errors.
    const r = spawnSync(process.execPath, [bin, 'loadtest', 'udp', '--server', `127.0.0.1:${t.port}`, '--duration', '2', '--warmup', '0', '--json'], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout) as {responses: Record<string, number>; errors: Record<string, number>; unanswered: number}
    assert.ok(report.responses.connect >= 1)
    assert.ok(report.errors['Info hash not allowed'] > 0, JSON.stringify(report))
    assert.ok(report.responses.scrape > 0)
    const w = join(dir, 'hashes.txt')
    assert.equal(run(['loadtest', 'udp', '--write-info-hashes', w]).code, 0)
    const lines = readFileSync(w, 'utf8').trim().split('\n')
    assert.equal(lines.length, 10_000)
    assert.ok(lines.every(l => /^[0-9a-f]{40}$/.test(l)))
  } finally {
    t.child.kill('SIGTERM')
    await t.exited
  }
})

const SECOND_TRACKER = /another tracker \(pid (\d+)\) is running with pid file (.*): stop it or set a different pid_file/

test('a second tracker with the same pid_file exits 1 naming the first, before binding; the first still reloads', async () => {
  const dir = tempDir()
  const hash = nastyId().toString('hex')
  // Started as `node bin/run.js` from the package root: the check resolves it through /proc/PID/cwd.
  const t = await startServe(dir, `${hash}\n`, 'udp', '', {cwd: root, script: 'bin/run.js'})
  const pidFile = join(dir, 'tracker.pid')
  try {
    assert.equal(checkTracker(t.child.pid!).verdict, 'tracker')
    const pidBefore = statSync(pidFile).ino
    const second = run(['serve', 'udp', '-c', serveConfig(dir, 'udp', PORT + 1, '', 'second')])
    assert.equal(second.code, 1)
    const m = SECOND_TRACKER.exec(oneLine(second.stderr))
    assert.ok(m, second.stderr)
    assert.deepEqual([Number(m[1]), m[2]], [t.child.pid, pidFile])
    assert.doesNotMatch(second.stderr + second.stdout, /listening/, 'it stopped before binding')
    noStack(second.stderr)
    assert.equal(statSync(pidFile).ino, pidBefore)
    assert.equal(readFileSync(pidFile, 'utf8'), `${t.child.pid}\n`)
    writeFileSync(join(dir, 'list.txt'), `${hash}\n${nastyId().toString('hex')}\n`)
    const outcome = await requestReload(pidFile)
    assert.equal(outcome.ok, true, outcome.message)
    assert.match(outcome.message, /2 entries in force \(generation 2\)/)
  } finally {
    t.child.kill('SIGTERM')
    assert.equal(await t.exited, 0)
  }
  assert.throws(() => statSync(pidFile), /ENOENT/)
})

test('two trackers started at the same moment with one pid_file: exactly one runs (with no pid file, and with a stale one)', async () => {
  for (const stale of [false, true]) {
    const dir = tempDir()
    writeFileSync(join(dir, 'list.txt'), '')
    const pidFile = join(dir, 'tracker.pid')
    if (stale) writeFileSync(pidFile, `${spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {encoding: 'utf8'}).stdout}\n`)
    const both = [0, 1].map(i => spawnServe('udp', serveConfig(dir, 'udp', PORT + i, '', `t${i}`)))
    try {
      for (let i = 0; i < 200 && !(readStatus(pidFile) && both.some(b => b.child.exitCode !== null)); i++) await sleep(50)
      const lost = both.filter(b => b.child.exitCode !== null)
      const won = both.filter(b => b.child.exitCode === null)
      assert.equal(lost.length, 1, both.map(b => b.output()).join('\n---\n'))
      assert.equal(won.length, 1)
      assert.equal(await lost[0].exited, 1)
      assert.equal(Number(SECOND_TRACKER.exec(oneLine(lost[0].output()))?.[1]), won[0].child.pid, lost[0].output())
      assert.equal(readFileSync(pidFile, 'utf8'), `${won[0].child.pid}\n`)
      assert.equal(readStatus(pidFile)!.pid, won[0].child.pid)
    } finally {
      for (const b of both) b.child.kill('SIGTERM')
      await Promise.all(both.map(b => b.exited))
    }
  }
})

test('accesslist reload --pid on a pid file naming a sleep refuses, and the sleep lives', async () => {
  const dir = tempDir()
  const sleeper = spawn('sleep', ['60'], {stdio: 'ignore'})
  try {
    const pidFile = join(dir, 'tracker.pid')
    writeFileSync(pidFile, `${sleeper.pid}\n`)
    writeFileSync(statusPathFor(pidFile), JSON.stringify({pid: sleeper.pid, generation: 1}))
    const r = run(['accesslist', 'reload', '--pid', pidFile])
    assert.equal(r.code, 1)
    assert.match(oneLine(r.stderr), new RegExp(`refusing to signal pid ${sleeper.pid} .*is not a tracker \\(its command line is \`sleep 60\`\\)`))
    noStack(r.stderr)
    await sleep(200)
    assert.equal(sleeper.exitCode, null)
    assert.equal(sleeper.signalCode, null, 'the sleep was not signalled')
  } finally {
    sleeper.kill()
  }
})

test('accesslist reload reports the reload that began after its signal, not the one under way', async () => {
  const dir = tempDir()
  const first = nastyId().toString('hex')
  const t = await startServe(dir, `${first}\n`)
  const pidFile = join(dir, 'tracker.pid')
  const list = join(dir, 'list.txt')
  const replace = (text: string): void => {
    writeFileSync(`${list}.new`, text)
    renameSync(`${list}.new`, list)
  }
  const hashes = (n: number): string => {
    const raw = randomBytes(20 * n)
    let text = ''
    for (let i = 0; i < n; i++) text += raw.toString('hex', 20 * i, 20 * i + 20) + '\n'
    return text
  }
  try {
    // Both lists are big enough that each reload outlasts the client's 50 ms between two looks.
    const [big, other] = [hashes(500_000), hashes(300_000)]
    replace(big)
    t.child.kill('SIGUSR1') // someone else's reload: the big list
    await sleep(30)
    replace(other)
    const outcome = await requestReload(pidFile)
    assert.equal(outcome.ok, true, outcome.message)
    assert.equal(outcome.status!.entries, 300_000, outcome.message)
    assert.equal(outcome.status!.generation, 3, 'the big reload (2) ran first, then the one this request asked for')
  } finally {
    t.child.kill('SIGTERM')
    await t.exited
  }
})

test('-h is --help on every command and topic; `tracker help COMMAND` too', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
  const topics = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {oclif: {topics: Record<string, unknown>}}).oclif.topics)
  const ids = [...Object.keys(manifest.commands).map(id => id.split(':')), ...topics.map(t => [t]), []]
  assert.ok(ids.length > 10)
  for (const words of ids) {
    const short = run([...words, '-h'])
    assert.equal(short.code, 0, `${words.join(' ')} -h: ${short.stderr}`)
    assert.match(short.stdout, /^USAGE$/m, `${words.join(' ')} -h`)
    if (words.length !== 1) continue
    assert.equal(short.stdout, run([...words, '--help']).stdout, `${words.join(' ')}: -h and --help print the same`)
  }
  const help = run(['help', 'serve', 'udp'])
  assert.equal(help.code, 0, help.stderr)
  assert.match(help.stdout, /--no-ipv6/)
  assert.match(help.stdout, /Without --ipv6, IPv6 is\s+off, whatever the config file says/)
})

test('a mistyped command: "did you mean", exit 127; a prompt that runs it when on a terminal', async () => {
  for (const [typed, meant] of [
    [['serv', 'udp'], 'tracker serve udp'],
    [['conifg', 'print', 'udp'], 'tracker config print udp'],
    [['accesslist', 'relaod', '-c', 'x.toml'], 'tracker accesslist reload -c x.toml'],
    [['tpo', '--once'], 'tracker top --once'],
    [['srve'], 'tracker serve'],
  ] as const) {
    const r = run([...typed])
    // The plugin colours its words where supports-color sees colour (CI=true counts): read the text.
    const stderr = stripVTControlCharacters(r.stderr)
    assert.equal(r.code, 127, typed.join(' '))
    assert.match(stderr, new RegExp(`Warning: ${typed[0]}\\b.* is not a tracker command`))
    assert.ok(stderr.includes(` ›   Did you mean: ${meant}\n`), `${typed.join(' ')}:\n${stderr}`)
    assert.match(stderr, /Run tracker help.* for a list of available commands/)
  }
  assert.doesNotMatch(run(['xyzzy']).stderr, /Did you mean/, 'nothing close: no suggestion')
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) return
  // On a terminal (util-linux `script` makes one), @oclif/plugin-not-found asks; "y" runs the command.
  const tty = spawn('script', ['-qec', `${process.execPath} ${bin} confg print udp`, '/dev/null'], {stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  tty.stdout.on('data', d => (out += d))
  const exited = new Promise<number | null>(resolve => tty.on('exit', code => resolve(code)))
  for (let i = 0; i < 200 && !/Did you mean/.test(out); i++) await sleep(50)
  assert.match(out, /Did you mean .*config print.*\?/)
  tty.stdin.write('y\r')
  assert.equal(await exited, 0, out)
  assert.match(out, /^socket_workers = 1/m, 'the suggested command ran')
})

test('error text is one line per line off a terminal, however long', () => {
  const r = run(['config', 'print', 'udp', '--ipv4', 'tracker.example.org:6969'])
  assert.equal(r.code, 1)
  const lines = r.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, r.stderr)
  assert.ok(lines[0].length > 200, 'longer than any terminal wrap')
  assert.match(
    lines[0],
    /flag --ipv4: network\.address_ipv4 = "tracker\.example\.org:6969" is not valid: "tracker\.example\.org" is a host name: write an IP address \(only localhost is accepted, as 127\.0\.0\.1\); expected an IPv4/,
  )
})

test('serve --ipv4 alone serves IPv4 only, though the file turns IPv6 on; --metrics moves the endpoint', async () => {
  const dir = tempDir()
  const config = join(dir, 'both.toml')
  writeFileSync(config, `pid_file = "${join(dir, 'tracker.pid')}"\n[network]\nuse_ipv4 = true\nuse_ipv6 = true\naddress_ipv6 = "[::1]:${PORT}"\n`)
  const metricsPort = PORT + 1
  const child = spawn(process.execPath, [bin, 'serve', 'http', '-c', config, '--ipv4', `localhost:${PORT}`, '--metrics', `127.0.0.1:${metricsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', d => (output += d))
  child.stderr.on('data', d => (output += d))
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  try {
    for (let i = 0; i < 200 && !readStatus(join(dir, 'tracker.pid')); i++) await sleep(50)
    const status = readStatus(join(dir, 'tracker.pid'))
    assert.ok(status, output)
    assert.deepEqual(status.listening, [`http://127.0.0.1:${PORT}/announce (batched I/O)`, `metrics http://127.0.0.1:${metricsPort}/metrics`])
    const refused = await new Promise<boolean>(resolve => {
      const s = createConnection({host: '::1', port: PORT}, () => {
        s.destroy()
        resolve(false)
      })
      s.on('error', () => resolve(true))
    })
    assert.ok(refused, 'nothing on [::1]')
    const top = spawnSync(process.execPath, [bin, 'top', '--once', '--url', `http://localhost:${metricsPort}/metrics`], {encoding: 'utf8', timeout: 30_000})
    assert.equal(top.status, 0, top.stderr)
    assert.match(top.stdout, /^tracker http /)
  } finally {
    child.kill('SIGTERM')
    assert.equal(await exited, 0, output)
  }
})

test('accesslist reload -c on a config that could be HTTP or WS, without pid_file: asks for --protocol', () => {
  const dir = tempDir()
  const config = join(dir, 'tls.toml')
  writeFileSync(config, '[network]\nenable_tls = false\n')
  const r = run(['accesslist', 'reload', '-c', config])
  assert.equal(r.code, 1)
  assert.ok(
    r.stderr.includes(
      `config file ${config} fits the http and ws tracker configs, and they differ in pid_file (http: ./tracker-http.pid, ws: ./tracker-ws.pid): say which with --protocol http|ws, or set pid_file in the file`,
    ),
    r.stderr,
  )
  const udp = join(dir, 'udp.toml')
  writeFileSync(udp, '[network]\nenable_tls = true\n')
  assert.match(run(['accesslist', 'reload', '--protocol', 'udp', '-c', udp]).stderr, /unknown key network\.enable_tls/, '--protocol still decides')
})

/** Every line of a tracker's stderr as JSON: time, level and msg at least. */
function jsonLines(stderr: string): Array<{time: string; level: string; msg: string; worker?: number}> {
  const lines = stderr.split('\n')
  assert.equal(lines.pop(), '', 'the last line ends')
  return lines.map(line => {
    let o: {time: string; level: string; msg: string; worker?: number}
    assert.doesNotThrow(() => (o = JSON.parse(line)), `a JSON line: ${line}`)
    assert.equal(new Date(o!.time).toISOString(), o!.time, line)
    assert.match(o!.level, /^(error|warn|info|debug)$/, line)
    assert.equal(typeof o!.msg, 'string', line)
    return o!
  })
}

test('--log-format json: every line of the primary and of worker processes is one JSON object, a hostile file line included', async () => {
  const dir = tempDir()
  const t = await startServe(dir, '', 'udp', '', {args: ['--log-format', 'json', '--workers', '2']})
  // A bad access list at reload: its line comes back in an error message, quotes and all.
  writeFileSync(join(dir, 'list.txt'), 'nope "quoted" \\ \u001b[31m\n')
  t.child.kill('SIGUSR1')
  for (let i = 0; i < 200 && !/reload failed/.test(t.stderr()); i++) await sleep(50)
  t.child.kill('SIGTERM')
  assert.equal(await t.exited, 0, t.output())
  const udp = jsonLines(t.stderr())
  assert.ok(
    udp.some(l => l.level === 'info' && /^udp tracker listening: udp 127\.0\.0\.1:/.test(l.msg)),
    t.stderr(),
  )
  assert.ok(
    udp.some(l => l.level === 'info' && /^2 workers;/.test(l.msg)),
    t.stderr(),
  )
  assert.ok(
    udp.some(l => l.level === 'error' && l.msg.includes('line 1: "nope \\"quoted\\"')),
    t.stderr(),
  )
  assert.ok(
    udp.some(l => l.msg === 'stopping'),
    t.stderr(),
  )

  // Worker processes log too: each lowers an HTTP max_connections above the open-file limit.
  const http = await startServe(tempDir(), '', 'http', '\n[connections]\nmax_connections = 1000000', {args: ['--log-format', 'json', '--workers', '2']})
  http.child.kill('SIGTERM')
  assert.equal(await http.exited, 0, http.output())
  const lines = jsonLines(http.stderr())
  for (const worker of [0, 1])
    assert.ok(
      lines.some(l => l.worker === worker && l.level === 'warn' && /max_connections = 1000000/.test(l.msg)),
      http.stderr(),
    )

  // One worker runs in the primary's process, with the primary's logger.
  const one = await startServe(tempDir(), '', 'http', '\n[connections]\nmax_connections = 1000000', {args: ['--log-format', 'json', '--workers', '1']})
  one.child.kill('SIGTERM')
  assert.equal(await one.exited, 0, one.output())
  assert.ok(
    jsonLines(one.stderr()).some(l => l.worker === undefined && l.level === 'warn' && /max_connections = 1000000/.test(l.msg)),
    one.stderr(),
  )
})

test('the text log format: time, level, [worker N] for a worker process', async () => {
  const http = await startServe(tempDir(), '', 'http', '\n[connections]\nmax_connections = 1000000', {args: ['--workers', '2']})
  http.child.kill('SIGTERM')
  assert.equal(await http.exited, 0, http.output())
  assert.match(http.stderr(), /^\S+Z INFO {2}http tracker listening: http:\/\/127\.0\.0\.1:/m)
  assert.match(http.stderr(), /^\S+Z WARN {2}\[worker 1\] \[connections\] max_connections = 1000000 is more than/m)
  assert.doesNotMatch(http.stderr(), /^\{/m)
})

test('serve all: UDP, HTTP and WS from one command and one file; one status file; accesslist reload -c and top read the all config; Ctrl-C stops all', async () => {
  const dir = tempDir()
  const allowed = nastyId()
  writeFileSync(join(dir, 'list.txt'), `${Buffer.from(allowed).toString('hex')}\n`)
  const config = join(dir, 'all.toml')
  writeFileSync(
    config,
    `pid_file = "${join(dir, 'tracker.pid')}"
[metrics]
prometheus_endpoint_address = "127.0.0.1:0"
[access_list]
mode = "allow"
path = "${join(dir, 'list.txt')}"
[udp.network]
address_ipv4 = "127.0.0.1:${PORT}"
[http.network]
address_ipv4 = "127.0.0.1:${PORT}"
[ws]
socket_workers = 2
[ws.network]
address_ipv4 = "127.0.0.1:${PORT + 1}"
`,
  )
  const t = spawnServe('all', config, {args: ['--no-ipv6']})
  const client = await UdpClient.open(4, PORT)
  try {
    for (let i = 0; i < 200 && !readStatus(join(dir, 'tracker.pid')); i++) await sleep(50)
    const status = readStatus(join(dir, 'tracker.pid'))
    assert.ok(status, t.output())
    assert.equal(status.protocol, 'all')
    assert.match(
      status.listening.join('\n'),
      new RegExp(
        `^udp 127\\.0\\.0\\.1:${PORT} .*\\nhttp://127\\.0\\.0\\.1:${PORT}/announce .*\\nws://127\\.0\\.0\\.1:${PORT + 1}.*\\nmetrics http://127\\.0\\.0\\.1:\\d+/metrics$`,
      ),
    )
    for (const p of ['udp', 'http', 'ws']) assert.match(t.output(), new RegExp(`INFO  ${p} tracker listening: `), p)
    // Logged just after the status file is written.
    const ready = /udp 1 worker, http 1 worker, ws 2 workers; access list mode allow, 1 entries/
    for (let i = 0; i < 100 && !ready.test(t.output()); i++) await sleep(50)
    assert.match(t.output(), ready)
    await client.connect()
    assert.equal((await client.request(client.announceBytes({infoHash: allowed, peerId: nastyId(), port: 1000}))).action, 1)
    const http = await httpGet(PORT, '/announce?info_hash=%00&peer_id=x&port=1')
    assert.ok(http.body.length > 0, 'HTTP answers on its port')

    const reload = run(['accesslist', 'reload', '-c', config])
    assert.equal(reload.code, 0, reload.stderr)
    assert.match(reload.stdout, /1 entries/)

    const metricsUrl = status.listening[3].replace(/^metrics /, '')
    const top = spawnSync(process.execPath, [bin, 'top', '--once', '--url', metricsUrl], {encoding: 'utf8', timeout: 30_000})
    assert.equal(top.status, 0, top.stderr)
    assert.match(top.stdout, /^tracker udp\+http\+ws /)
    assert.match(top.stdout, /^protocol +requests\/s/m)
    for (const p of ['udp', 'http', 'ws']) assert.match(top.stdout, new RegExp(`^ *${p} `, 'm'), p)

    const printed = run(['config', 'print', 'all', '-c', config])
    assert.equal(printed.code, 0, printed.stderr)
    assert.match(printed.stdout, /^\[ws\]\n(#.*\n)*enabled = true\n\n(#.*\n)*socket_workers = 2$/m)
  } finally {
    client.close()
    t.child.kill('SIGINT')
    assert.equal(await t.exited, 0, t.output())
  }
  assert.equal(readStatus(join(dir, 'tracker.pid')), undefined, 'the status file is removed at stop')
})
