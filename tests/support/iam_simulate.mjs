// The IAM evaluator of the least-privilege tests (tests/support/iam.py): @cloud-copilot/iam-simulate,
// which local/build.py installs into the folder given as argv[2]. Each line on stdin is a JSON
// array of simulations (iam-simulate's `Simulation`); each answer is one line, a JSON array of
// {decision, errors}: decision is "Allowed", "ImplicitlyDenied", "ExplicitlyDenied", or "Error"
// when iam-simulate refuses the input (a policy, action, ARN or context key it does not accept).
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'

const require = createRequire(join(resolve(process.argv[2]), 'package.json'))
const { runSimulation, runUnsafeSimulation } = require('@cloud-copilot/iam-simulate')

// iam-simulate 0.1.173 checks a request's context keys against the action's, and matches keys
// with a variable part only when it follows a `/` (aws:PrincipalTag/Name): it drops
// `kms:EncryptionContext:<name>` as unknown, so any condition on one fails. Such a request is
// validated first (policies, action, ARN, every other key), then evaluated unvalidated, with
// its context as given.
const VARIABLE_WITH_COLON = /^kms:EncryptionContext:/i

async function decide(simulation) {
  const response = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (response.resultType === 'error') {
    return { decision: 'Error', errors: response.errors }
  }
  if (response.resultType !== 'single') {
    return { decision: 'Error', errors: { message: `${response.resultType}: not one resource` } }
  }
  const ignored = response.result.ignoredContextKeys ?? []
  const unknown = ignored.filter((key) => !VARIABLE_WITH_COLON.test(key))
  if (unknown.length > 0) {
    return { decision: 'Error', errors: { message: `context keys the request cannot carry: ${unknown}` } }
  }
  if (ignored.length === 0) {
    return { decision: response.overallResult }
  }
  // runUnsafeSimulation loads the resource policy without a name, which 0.1.173 then reads:
  // handed over as an already validated policy, it carries one.
  const resourcePolicy = simulation.resourcePolicy && {
    __validated: true,
    policyDocument: simulation.resourcePolicy,
    metadata: { name: 'resource policy' },
    errors: []
  }
  return { decision: runUnsafeSimulation({ ...simulation, resourcePolicy }, {}) }
}

for await (const line of createInterface({ input: process.stdin })) {
  const answers = []
  for (const simulation of JSON.parse(line)) {
    answers.push(await decide(simulation))
  }
  process.stdout.write(JSON.stringify(answers) + '\n')
}
