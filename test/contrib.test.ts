/** contrib/tracker@.service: systemd accepts it, and it fits the tracker's defaults. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {defaultsOf, httpSchema, wsSchema} from '../src/config/index.js'
import {tempDir} from './harness.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const unitText = readFileSync(join(root, 'contrib/tracker@.service'), 'utf8')
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

/** The [Service] section's settings; a key given twice keeps every value (systemd appends most lists). */
function service(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) section = header[1]
    else if (section === 'Service') {
      const eq = line.indexOf('=')
      assert.ok(eq > 0, `a setting: ${line}`)
      const key = line.slice(0, eq)
      out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)])
    }
  }
  return out
}

test('the unit: low ports by capability, SIGUSR1 on reload, an open-file limit above every default max_connections', () => {
  const s = service(unitText)
  const one = (key: string): string => {
    const v = s.get(key)
    assert.equal(v?.length, 1, `${key} set once`)
    return v![0]
  }
  assert.match(one('ExecStart'), /^(\/\S+\/)?tracker serve %i -c \/etc\/tracker\/%i\.toml$/)
  assert.match(one('ExecReload'), /^\/bin\/kill (-USR1|-s USR1|--signal=USR1) \$MAINPID$/)
  assert.ok(one('AmbientCapabilities').split(/\s+/).includes('CAP_NET_BIND_SERVICE'))
  assert.deepEqual(one('CapabilityBoundingSet').split(/\s+/), ['CAP_NET_BIND_SERVICE'])
  assert.equal(one('NoNewPrivileges'), 'yes')
  assert.notEqual(one('User'), 'root')
  assert.equal(one('Restart'), 'on-failure')
  // Each worker is its own process with its own limit: it keeps 64 descriptors besides its connections.
  const most = Math.max(defaultsOf(httpSchema).connections.max_connections, defaultsOf(wsSchema).connections.max_connections)
  assert.ok(Number(one('LimitNOFILE')) > most + 64, `LimitNOFILE=${one('LimitNOFILE')} above ${most} + 64`)
  // The pid file's directory is the one place it may write (ProtectSystem=strict).
  assert.equal(one('ProtectSystem'), 'strict')
  assert.equal(one('RuntimeDirectory'), 'tracker/%i')
  assert.match(readFileSync(join(root, 'contrib/README.md'), 'utf8'), /pid_file = "\/run\/tracker\/udp\/tracker\.pid"/)
})

test('systemd-analyze verify accepts the unit without a warning', {
  skip: hasAnalyze ? false : 'systemd-analyze is not installed (apt-get install systemd; .ci/run does)',
}, () => {
  // verify checks that ExecStart's program exists: this checkout's bin/run.js stands in for the installed `tracker`.
  const dir = tempDir()
  const unit = join(dir, 'tracker@.service')
  const text = unitText.replace(/^ExecStart=\S+/m, `ExecStart=${join(root, 'bin/run.js')}`)
  assert.notEqual(text, unitText)
  writeFileSync(unit, text)
  for (const name of ['tracker@udp.service', 'tracker@http.service', 'tracker@ws.service']) {
    const r = spawnSync('systemd-analyze', ['verify', join(dir, name)], {cwd: dir, encoding: 'utf8', timeout: 60_000})
    // Warnings about other units of this machine are not ours; every line about this one is.
    const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter(line => line.includes('tracker@'))
    assert.deepEqual(ours, [], `${name}:\n${r.stderr}`)
    assert.equal(r.status, 0, `${name}:\n${r.stderr}`)
  }
})
