/**
 * Benchmarks: `npm run bench -- engine|udp|http|ws|quickstart|scaling|mesh-echo [--duration N] [--rounds N] [--only NAME] [--starts N]`.
 * Speed targets are checked here, comparing against peers in the same run, never in tests.
 */
import {parseArgs} from 'node:util'
import {benchEngine} from './engine.js'
import {benchHttp, formatHttpBench} from './http.js'
import {benchQuickstart} from './quickstart.js'
import {benchMeshEcho, formatMeshEcho} from './mesh-echo.js'
import {benchScaling, formatScalingBench} from './scaling.js'
import {benchUdp, formatUdpBench} from './udp.js'
import {benchWs, formatWsBench} from './ws.js'

const BENCHES = ['engine', 'udp', 'http', 'ws', 'quickstart', 'scaling', 'mesh-echo'] as const

async function main(): Promise<number> {
  const {positionals, values} = parseArgs({
    allowPositionals: true,
    options: {
      duration: {type: 'string', default: '10'},
      rounds: {type: 'string', default: '3'},
      only: {type: 'string', multiple: true, default: []},
      peers: {type: 'string', default: '1000000'},
      torrents: {type: 'string', default: '100000'},
      idle: {type: 'string', default: '10000'},
      starts: {type: 'string', default: '5'},
    },
  })
  const which = positionals.length > 0 ? positionals : ['engine']
  for (const name of which) {
    if (!(BENCHES as readonly string[]).includes(name)) {
      process.stderr.write(`unknown bench "${name}": expected one of ${BENCHES.join(', ')}\n`)
      return 2
    }
  }
  const log = (line: string): boolean => process.stderr.write(line + '\n')
  let code = 0
  for (const name of which) {
    if (name === 'engine') process.stdout.write(await benchEngine({peers: Number(values.peers), torrents: Number(values.torrents), timeMs: 2000}))
    if (name === 'udp') {
      const options = {duration: Number(values.duration), rounds: Number(values.rounds), only: values.only as string[]}
      process.stdout.write(formatUdpBench(await benchUdp(options, log), options))
    }
    if (name === 'http') {
      const options = {duration: Number(values.duration), rounds: Number(values.rounds), only: values.only as string[]}
      process.stdout.write(formatHttpBench(await benchHttp(options, log), options))
    }
    if (name === 'ws') {
      const options = {duration: Number(values.duration), rounds: Number(values.rounds), only: values.only as string[], idle: Number(values.idle)}
      process.stdout.write(formatWsBench(await benchWs(options, log), options))
    }
    if (name === 'scaling') {
      const options = {duration: Number(values.duration), rounds: Number(values.rounds), only: values.only as string[]}
      process.stdout.write(formatScalingBench(await benchScaling(options, log), options))
    }
    if (name === 'mesh-echo') {
      const options = {duration: Number(values.duration), rounds: Number(values.rounds)}
      process.stdout.write(formatMeshEcho(await benchMeshEcho(options, log), options))
    }
    if (name === 'quickstart') {
      const r = await benchQuickstart({starts: Number(values.starts)}, log)
      process.stdout.write(r.text)
      if (!r.ok) code = 1
    }
  }
  return code
}

main().then(
  code => process.exit(code),
  (error: Error) => {
    process.stderr.write(`bench failed: ${error.message}\n`)
    process.exit(1)
  },
)
