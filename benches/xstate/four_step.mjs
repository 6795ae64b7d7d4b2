// The four-step workload of benches/workflows/four_step.yaml as an XState v5 machine:
// submitted -> reviewed -> approved (guard `amount < 15000`) -> paid -> closed, over 10,000
// actors. Prints one JSON line per measurement, in nanoseconds per transition:
//
//   actor_send:  `actor.send(event)` on started actors (the transition and the actor's
//                snapshot update, as an application uses XState);
//   transition:  the pure `transition(machine, snapshot, event)`, the closest analogue of
//                sopflow's `machine::step`.
//
// Each round builds fresh actors (not timed), then sends every actor `review`, then every actor
// `approve`, and so on, as benches/runtime.rs drives sopflow's instances. The first rounds warm
// the JIT up and are not reported; the figure is the median round.
//
//   node benches/xstate/four_step.mjs [--instances 10000] [--rounds 10] [--warmup 3]
//
// Run by benches/compare-xstate.sh beside the Rust benchmark.

import { createActor, setup, transition } from 'xstate';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

const INSTANCES = option('instances', 10_000);
const ROUNDS = option('rounds', 10);
const WARMUP = option('warmup', 3);
const EVENTS = ['review', 'approve', 'pay', 'close'].map((type) => ({ type }));

const machine = setup({
  types: { context: {}, input: {} },
  guards: {
    // The same guard as the workflow's `data.amount < 15000`.
    underLimit: ({ context }) => context.amount < 15000,
  },
}).createMachine({
  id: 'four_step',
  initial: 'submitted',
  context: ({ input }) => ({ amount: input.amount }),
  states: {
    submitted: { on: { review: 'reviewed' } },
    reviewed: { on: { approve: { target: 'approved', guard: 'underLimit' } } },
    approved: { on: { pay: 'paid' } },
    paid: { on: { close: 'closed' } },
    closed: { type: 'final' },
  },
});

// The same amounts as the Rust benchmark: all under the limit, so every guard passes.
const amount = (i) => 1000 + (i % 13_000);

function actorRound() {
  const actors = [];
  for (let i = 0; i < INSTANCES; i++) {
    actors.push(createActor(machine, { input: { amount: amount(i) } }).start());
  }
  const began = process.hrtime.bigint();
  for (const event of EVENTS) {
    for (const actor of actors) actor.send(event);
  }
  const elapsed = process.hrtime.bigint() - began;
  for (const actor of actors) {
    if (actor.getSnapshot().value !== 'closed') throw new Error('an actor did not close');
  }
  return Number(elapsed) / (INSTANCES * EVENTS.length);
}

function transitionRound() {
  const snapshots = [];
  for (let i = 0; i < INSTANCES; i++) {
    snapshots.push(createActor(machine, { input: { amount: amount(i) } }).getSnapshot());
  }
  const began = process.hrtime.bigint();
  for (const event of EVENTS) {
    for (let i = 0; i < INSTANCES; i++) {
      snapshots[i] = transition(machine, snapshots[i], event)[0];
    }
  }
  const elapsed = process.hrtime.bigint() - began;
  for (const snapshot of snapshots) {
    if (snapshot.value !== 'closed') throw new Error('a snapshot did not close');
  }
  return Number(elapsed) / (INSTANCES * EVENTS.length);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

for (const [name, round] of [
  ['actor_send', actorRound],
  ['transition', transitionRound],
]) {
  for (let i = 0; i < WARMUP; i++) round();
  const times = [];
  for (let i = 0; i < ROUNDS; i++) times.push(round());
  console.log(
    JSON.stringify({
      bench: `xstate/${name}`,
      instances: INSTANCES,
      rounds: ROUNDS,
      median_ns: Number(median(times).toFixed(1)),
      min_ns: Number(Math.min(...times).toFixed(1)),
      max_ns: Number(Math.max(...times).toFixed(1)),
    }),
  );
}
