// 2,000 chained setTimeout(f, 0) ticks with 0, 1,000, 5,000 and 9,990 other timers
// pending (issue 12; issue 15 targets 5,000): `miniworker run bench/timers`.
// Each case runs twice; the first of each is a warm-up for the heap.
function run(pending, done) {
  const ids = [];
  for (let i = 0; i < pending; i++) ids.push(setTimeout(() => {}, 3600e3 + i));
  let n = 0;
  const t0 = performance.now();
  function tick() {
    if (++n < 2000) setTimeout(tick, 0);
    else {
      console.log('2000 ticks with ' + pending + ' pending: ' + (performance.now() - t0).toFixed(1) + ' ms');
      ids.forEach(clearTimeout);
      done();
    }
  }
  setTimeout(tick, 0);
}
const cases = [0, 1000, 5000, 9990, 0, 1000, 5000, 9990];
(function next(i) {
  if (i < cases.length) run(cases[i], () => next(i + 1));
})(0);
