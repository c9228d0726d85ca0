// A taskset CPU list read as CPU numbers (a module of its own: the server starters and the machine
// readers both need it, and machine.ts imports the starters).
/** CPU numbers of a taskset list ("1", "0,2", "2-3"). */
export function cpuList(cpus: string): number[] {
  const out: number[] = [];
  for (const part of cpus.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let c = a; c <= (b !== undefined && Number.isInteger(b) ? b : a); c++) out.push(c);
  }
  return out;
}
