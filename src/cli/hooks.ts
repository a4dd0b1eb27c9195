/** oclif hooks of the `tracker` CLI (declared in package.json, oclif.hooks). */
import {type Hook, toConfiguredId} from '@oclif/core'

/** oclif's own width for text on `stream`: the terminal's (at least 40), else 80. */
function termWidth(stream: NodeJS.WriteStream): number {
  if (!stream.isTTY) return 80
  const width = stream.getWindowSize()[0]
  return width < 1 ? 80 : Math.max(40, width)
}

/**
 * bin/run.js sets OCLIF_COLUMNS (read once, as @oclif/core loads) when stderr is not a terminal, so
 * that error text is not wrapped at 80 columns in logs and scripts, and removes it again; help, on
 * stdout, keeps the width it would have had. A user's own OCLIF_COLUMNS is left to rule both.
 */
export const init: Hook<'init'> = async ({config}) => {
  if (process.env.OCLIF_COLUMNS !== undefined) return
  config.pjson.oclif.helpOptions = {...config.pjson.oclif.helpOptions, maxWidth: termWidth(process.stdout)}
}

/** Edit distance of two strings (Levenshtein), for "did you mean". */
export function editDistance(a: string, b: string): number {
  let row = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}

/**
 * The command or topic closest to a mistyped id, and the words after it: each candidate is compared
 * with as many words of the id as it has ("conifg:print:udp" -> "config:print" and "udp"); on a
 * tie, the one with more words wins. None when nothing is close.
 */
export function closestCommand(id: string, candidates: readonly string[]): {id: string; rest: string[]} | undefined {
  const words = id.split(':')
  let best: {id: string; rest: string[]} | undefined
  let bestDistance = Math.max(2, Math.floor(id.length / 3)) + 1
  let bestParts = 0
  for (const c of candidates) {
    const parts = c.split(':').length
    const d = editDistance(words.slice(0, parts).join(':'), c)
    if (d < bestDistance || (d === bestDistance && best && parts > bestParts)) {
      best = {id: c, rest: words.slice(parts)}
      bestDistance = d
      bestParts = parts
    }
  }
  return best
}

/**
 * "Did you mean" when nobody can answer a prompt: @oclif/plugin-not-found asks "Did you mean ...?"
 * (and runs the command on yes) only when stdin is a terminal; off one, it prints only that the
 * command does not exist. This runs after its warning and before its error is printed.
 */
export const didYouMean: Hook<'finally'> = async ({argv, config, Command, error, id}) => {
  if (Command !== undefined || process.stdin.isTTY || (error as {oclif?: {exit?: number}} | undefined)?.oclif?.exit !== 127) return
  // A command first: "serve udb" means `serve udp`, not the topic `serve`.
  const suggestion =
    closestCommand(id, config.commandIDs) ??
    closestCommand(
      id,
      config.topics.map(t => t.name),
    )
  if (suggestion) {
    const words = [toConfiguredId(suggestion.id, config), ...suggestion.rest, ...argv]
    process.stderr.write(` ›   Did you mean: ${config.bin} ${words.join(' ')}\n`)
  }
}
