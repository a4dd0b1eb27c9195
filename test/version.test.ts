import {test} from 'node:test'
import assert from 'node:assert/strict'
import {versionLine, version} from '../src/version.js'

test('version line names the package version and a commit', () => {
  const line = versionLine()
  assert.match(line, new RegExp(`^tracker ${version.replace(/\./g, '\\.')} \\(commit [0-9a-f]{7,12}|unknown\\)`))
})
