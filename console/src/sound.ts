/** A short two-tone alarm through Web Audio (no file to fetch); needs a context a click has unlocked. */
export function beep(ctx: AudioContext): void {
  const gain = ctx.createGain();
  gain.gain.value = 0.25;
  gain.connect(ctx.destination);
  for (const [i, f] of [880, 660, 880].entries()) {
    const osc = ctx.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start(ctx.currentTime + i * 0.25);
    osc.stop(ctx.currentTime + i * 0.25 + 0.2);
  }
}
