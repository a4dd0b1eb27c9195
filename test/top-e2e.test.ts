/** `tracker top` end to end: a real tracker under light load, the real CLI in a tmux pane. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFile, execFileSync, spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {startUdpTracker, tempDir, UdpClient} from './harness.js'
import {nastyId} from './helpers.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
/** Runs the CLI without blocking this process. */
function cli(args: string[]): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise(resolve => {
    execFile(process.execPath, [join(root, 'bin/run.js'), ...args], {encoding: 'utf8', timeout: 20_000}, (error, stdout, stderr) =>
      resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr}),
    )
  })
}

const hasTmux = spawnSync('sh', ['-c', 'command -v tmux']).status === 0

test('tracker top in a 120x40 tmux pane: live numbers that move, q exits 0; --once prints a snapshot', {
  skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux; .ci/run does)',
}, async () => {
  const t = await startUdpTracker()
  const client = await UdpClient.open(4, t.port4)
  const socket = `tracker-top-${process.pid}`
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], {encoding: 'utf8'})
  let load = true
  try {
    await client.connect()
    const hash = nastyId()
    const loop = (async () => {
      while (load) {
        await client.announce({infoHash: hash, peerId: nastyId(), port: 1000 + Math.floor(Math.random() * 1000)}).catch(() => undefined)
        await sleep(20)
      }
    })()
    tmux(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '120',
      '-y',
      '40',
      `${process.execPath} ${join(root, 'bin/run.js')} top --url ${t.metricsUrl}; echo EXITED:$?; sleep 10`,
    )
    let first = ''
    for (let i = 0; i < 40 && !/live/.test(first); i++) {
      await sleep(250)
      first = tmux('capture-pane', '-p', '-t', 'top')
    }
    assert.match(first, /tracker udp/, first)
    assert.match(first, /live/)
    assert.match(first, /torrents 1\b/)
    await sleep(2500)
    const second = tmux('capture-pane', '-p', '-t', 'top')
    assert.notEqual(second, first, 'the numbers on screen move')
    assert.match(second, /requests\/s/)
    assert.match(second, /announce \d+(\.\d)?\/s/, second)
    tmux('send-keys', '-t', 'top', 'q')
    let after = ''
    for (let i = 0; i < 20 && !/EXITED:/.test(after); i++) {
      await sleep(200)
      after = tmux('capture-pane', '-p', '-t', 'top')
    }
    assert.match(after, /EXITED:0/)
    // Not a terminal: one plain snapshot. (The tracker runs in this process: the CLI must not block it.)
    const once = await cli(['top', '--url', t.metricsUrl])
    assert.equal(once.code, 0, once.stderr)
    assert.match(once.stdout, /^tracker udp /)
    assert.match(once.stdout, /swarm {5}torrents 1/)
    const json = await cli(['top', '--json', '--url', t.metricsUrl])
    assert.equal(JSON.parse(json.stdout).swarm.torrents, 1)
    // Unreachable: a clear error and exit 1.
    const down = await cli(['top', '--once', '--url', 'http://127.0.0.1:9/metrics'])
    assert.equal(down.code, 1)
    assert.match(down.stderr, /could not read http:\/\/127\.0\.0\.1:9\/metrics/)
    load = false
    await loop
  } finally {
    load = false
    spawnSync('tmux', ['-L', socket, 'kill-server'])
    client.close()
    await t.stop()
  }
})

test("top -c takes the protocol from the file; a URL that is not a tracker's exits 1 saying so", async () => {
  const t = await startUdpTracker()
  const other = createServer((_req, res) => res.end('# TYPE node_load1 gauge\nnode_load1 0.42\n'))
  await new Promise<void>(resolve => other.listen(0, '127.0.0.1', resolve))
  const otherUrl = `http://127.0.0.1:${(other.address() as {port: number}).port}/metrics`
  try {
    const dir = tempDir()
    const address = new URL(t.metricsUrl).host
    // An HTTP tracker's config (its keys say so: [connections] idle_timeout is HTTP's alone), without --protocol.
    const http = join(dir, 'http.toml')
    writeFileSync(http, `[network]\nenable_tls = false\n[connections]\nidle_timeout = 60\n[metrics]\nprometheus_endpoint_address = "${address}"\n`)
    const read = await cli(['top', '--once', '-c', http])
    assert.equal(read.code, 0, read.stderr)
    assert.match(read.stdout, new RegExp(`^tracker udp .*http://${address}/metrics`))
    // HTTP's or WebTorrent's, with the default metrics address of each: the command asks.
    const unclear = join(dir, 'tls.toml')
    writeFileSync(unclear, '[network]\nenable_tls = false\n')
    const asked = await cli(['top', '--once', '-c', unclear])
    assert.equal(asked.code, 1)
    assert.match(asked.stderr, /fits the http and ws tracker configs, and they differ in \[metrics\] prometheus_endpoint_address .*--protocol http\|ws/)
    assert.doesNotMatch(asked.stderr, /\n.*›.*\n.*›/, 'one line: not wrapped at 80 columns off a terminal')
    for (const args of [['--once'], ['--json'], []]) {
      const r = await cli(['top', ...args, '--url', otherUrl])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`)
      assert.match(r.stderr, new RegExp(`${otherUrl} is not a tracker's metrics endpoint \\(it answered with 1 metric, none of them tracker_info\\)`))
      assert.equal(r.stdout, '')
    }
  } finally {
    other.close()
    await t.stop()
  }
})
