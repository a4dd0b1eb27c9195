import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** Root of the installed package (dist/src/version.js -> ../..). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function readPackageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {version: string}
  return pkg.version
}

/** The commit of the checkout the package runs from, read from .git without spawning git. */
export function readCommit(root = packageRoot): string | undefined {
  try {
    const head = readFileSync(join(root, '.git', 'HEAD'), 'utf8').trim()
    if (!head.startsWith('ref: ')) return head.slice(0, 12)
    const ref = head.slice(5)
    try {
      return readFileSync(join(root, '.git', ref), 'utf8')
        .trim()
        .slice(0, 12)
    } catch {
      const packed = readFileSync(join(root, '.git', 'packed-refs'), 'utf8')
      const line = packed.split('\n').find(l => l.endsWith(' ' + ref))
      return line?.slice(0, 12)
    }
  } catch {
    return undefined
  }
}

export const version = readPackageVersion()

export function versionLine(): string {
  return `tracker ${version} (commit ${readCommit() ?? 'unknown'}) node ${process.version} ${process.platform}-${process.arch}`
}
