import {Command, Flags} from '@oclif/core'
import {ConfigError, TRACKER_CONFIG_NAMES, type TrackerConfigName, valueFromTrackerConfig} from '../src/config/index.js'
import {fetchMetricsText, metricsUrl, readOnce, viewText, type View} from '../src/top/index.js'

export default class Top extends Command {
  static override description = 'Live dashboard of a running tracker, read from its Prometheus endpoint'
  static override examples = [
    '<%= config.bin %> top',
    "<%= config.bin %> top -c http.toml       # the endpoint in its [metrics]; the protocol is told by the file's keys",
    '<%= config.bin %> top --url http://127.0.0.1:9002/metrics',
    "<%= config.bin %> top --once          # one plain-text snapshot (also when stdout is not a terminal); exit 1 if the URL is not a tracker's",
    '<%= config.bin %> top --json',
  ]
  static override flags = {
    url: Flags.string({description: "metrics URL (default: the UDP tracker's, http://127.0.0.1:9000/metrics)", helpValue: 'URL'}),
    config: Flags.string({char: 'c', description: "the tracker's config file (its [metrics] address is used)", helpValue: 'FILE'}),
    protocol: Flags.string({
      description: 'which tracker the config belongs to (default: the one whose keys the file has; udp without -c); asked for only when that is unclear',
      options: [...TRACKER_CONFIG_NAMES],
    }),
    once: Flags.boolean({description: 'print one plain-text snapshot (two reads a second apart) and exit'}),
    json: Flags.boolean({description: 'print one snapshot as JSON and exit'}),
    interval: Flags.integer({description: 'seconds between reads', default: 1, min: 1}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Top)
    let url = flags.url
    if (!url) {
      try {
        const address = valueFromTrackerConfig(
          flags.config,
          flags.protocol as TrackerConfigName | undefined,
          '[metrics] prometheus_endpoint_address',
          c => c.metrics.prometheus_endpoint_address,
        )
        url = metricsUrl(address)
      } catch (error) {
        if (error instanceof ConfigError) this.error(error.message, {exit: 1})
        throw error
      }
    }
    if (flags.once || flags.json || !process.stdout.isTTY) {
      let view: View
      try {
        view = await readOnce(url)
      } catch (error) {
        this.error((error as Error).message, {exit: 1})
      }
      process.stdout.write(flags.json ? JSON.stringify({endpoint: url, ...view}, null, 2) + '\n' : viewText(view, url))
      return
    }
    // Ink and React load only here, so that other commands start fast; React's production build
    // must be chosen before anything imports React (a second build would not render).
    process.env.NODE_ENV ??= 'production'
    // Ink draws nothing until exit when CI or CONTINUOUS_INTEGRATION is set; a terminal is here,
    // so the dashboard must draw (shells inside CI jobs and some containers export CI=true).
    delete process.env.CI
    delete process.env.CONTINUOUS_INTEGRATION
    const {runDashboard} = await import('../src/top/app.js')
    await runDashboard(url, fetchMetricsText, flags.interval * 1000)
  }
}
