/** What every `tracker loadtest PROTOCOL` command does once its flags are parsed. */
import {writeFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {ConfigError, loadConfig, type ConfigFor} from '../src/config/index.js'
import {loadtestOverrides, type LoadtestFlagValues} from '../src/config/flags.js'
import {loadtestInfoHashList} from './model.js'
import {formatReport, type LoadReport} from './report.js'
import {LoadtestUsageError, type LoadtestOptions} from './threads.js'

export {LoadtestUsageError}

/** `--write-info-hashes FILE`, which every load tester takes. */
export const writeInfoHashesFlag = Flags.string({
  description: 'write the simulated info hashes (hex, one per line) for a whitelist or access list, then exit',
  helpValue: 'FILE',
})

export interface LoadtestFlags extends LoadtestFlagValues {
  config?: string
  json: boolean
  'write-info-hashes'?: string
}

export interface LoadtestCommandSpec<N extends 'loadtest-udp' | 'loadtest-http' | 'loadtest-ws'> {
  schema: N
  run(config: ConfigFor<N>, options: LoadtestOptions): Promise<LoadReport>
  /** The line printed before the run: what is loaded and how. */
  describe(config: ConfigFor<N>): string
}

export async function runLoadtestCommand<N extends 'loadtest-udp' | 'loadtest-http' | 'loadtest-ws'>(
  spec: LoadtestCommandSpec<N>,
  flags: LoadtestFlags,
  log: (line: string) => void,
): Promise<void> {
  let config: ConfigFor<N>
  try {
    config = loadConfig(spec.schema, {file: flags.config, overrides: loadtestOverrides(flags)})
  } catch (error) {
    if (error instanceof ConfigError) throw new LoadtestUsageError(error.message)
    throw error
  }
  // Every load-test schema has these keys.
  const common = config as unknown as {warmup: number; duration: number; requests: {number_of_torrents: number}}
  const writeHashes = flags['write-info-hashes']
  if (writeHashes) {
    writeFileSync(writeHashes, loadtestInfoHashList(common))
    log(`wrote ${common.requests.number_of_torrents} info hashes to ${writeHashes}`)
    return
  }
  const abort = new AbortController()
  process.once('SIGINT', () => abort.abort())
  // Everything but the summary goes to stderr: under --json, stdout is only the JSON.
  const warmup = common.warmup ? ` after a ${common.warmup} s warm-up (sent, not counted)` : ''
  log(`${spec.describe(config)}${common.duration ? `, measuring ${common.duration} s${warmup}` : `${warmup}; Ctrl-C stops`}`)
  const report = await spec.run(config, {signal: abort.signal, onProgress: log})
  if (flags.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    for (const w of report.warnings) log(`warning: ${w}`)
  } else process.stdout.write(formatReport(report))
  if (report.problem) throw new LoadtestUsageError(report.problem)
}
