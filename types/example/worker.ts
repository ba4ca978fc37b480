// A typed worker file.
const lib: { twice(n: number): number } = require('./lib');

worker.onMessage(async (msg) => {
  await Promise.resolve();
  worker.postMessage({ echo: msg, twice: lib.twice(21), at: Date.now() });
});

// @ts-expect-error a Symbol cannot be posted
worker.postMessage(Symbol('s'));
