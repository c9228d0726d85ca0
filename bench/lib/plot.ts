// Plots as SVG, rendered by Vega-Lite (compiled to Vega, drawn headless: no browser, no canvas).
import { writeFileSync } from 'node:fs';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Point {
  x: number;
  y: number;
  series: string;
  /** Line style, e.g. the percentile. */
  dash?: string;
  facet?: string;
}

export interface LineChart {
  title: string;
  x: string;
  y: string;
  logX?: boolean;
  logY?: boolean;
  points: Point[];
}

export async function renderLineChart(file: string, c: LineChart): Promise<void> {
  const hasDash = c.points.some((p) => p.dash !== undefined);
  const hasFacet = c.points.some((p) => p.facet !== undefined);
  const layer = {
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: c.x, scale: c.logX ? { type: 'log' } : { zero: false } },
      y: { field: 'y', type: 'quantitative', title: c.y, scale: c.logY ? { type: 'log' } : {} },
      color: { field: 'series', type: 'nominal', title: null },
      ...(hasDash ? { strokeDash: { field: 'dash', type: 'nominal', title: null } } : {}),
    },
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: c.title,
    data: { values: c.points },
    ...(hasFacet
      ? { facet: { field: 'facet', type: 'nominal', title: null }, columns: 2, spec: { width: 300, height: 200, ...layer }, resolve: { scale: { x: 'independent', y: 'independent' } } }
      : { width: 520, height: 260, ...layer }),
    config: { font: 'sans-serif', background: 'white' },
  } as TopLevelSpec;
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  writeFileSync(file, await view.toSVG());
  view.finalize();
}
