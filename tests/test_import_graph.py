"""The import graph of the sg2tf package, built from the sources with `ast` (nothing is
imported or executed), has no cycle.

Two graphs are checked:
  - module level: the imports that run when a module is imported. A cycle here can fail at
    import time depending on which module is imported first.
  - all imports, including those deferred into functions (sg2tf defers imports to keep
    TensorFlow out of flag handling). A cycle here imports fine but means two modules each
    need the other: the layering is wrong, and the next module-level import along it breaks.
Edges: `import a.b` -> a.b; `from a import b` -> a.b when that is a module, else a;
relative imports resolved. An import of one of the importer's own parent packages is not an
edge: Python initialises a package before its submodules, whatever the package imports.
"""

import ast
import pathlib
from typing import Dict, List, Set
import unittest

_PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'sg2tf'


def module_files(package: pathlib.Path) -> Dict[str, pathlib.Path]:
  """Dotted module name -> source file, for every .py file under package."""
  out = {}
  for path in sorted(package.rglob('*.py')):
    parts = list(path.relative_to(package.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
      parts.pop()
    out['.'.join(parts)] = path
  return out


def _targets(node: ast.AST, importer: str, is_package: bool, modules) -> List[str]:
  if isinstance(node, ast.Import):
    return [a.name for a in node.names]
  base = node.module or ''
  if node.level:  # relative: from the importer's package, `level - 1` packages up
    package = importer.split('.') if is_package else importer.split('.')[:-1]
    package = package[:len(package) - node.level + 1]
    base = '.'.join(package + ([base] if base else []))
  return [f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base for a in node.names]


def import_graphs(modules: Dict[str, pathlib.Path]) -> Dict[bool, Dict[str, Set[str]]]:
  """{False: module-level graph, True: graph of all imports}; module -> the sg2tf modules it
  imports. Each file is parsed once."""
  graphs = {False: {}, True: {}}
  for name, path in modules.items():
    edges = {False: set(), True: set()}

    def visit(node, top):
      for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
          found = _targets(child, name, path.name == '__init__.py', modules)  # pylint: disable=cell-var-from-loop
          edges[True].update(found)
          if top:
            edges[False].update(found)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
          visit(child, False)
        else:  # class bodies, if/try blocks at module level run at import time
          visit(child, top)

    visit(ast.parse(path.read_text(encoding='utf-8'), str(path)), True)
    parents = {'.'.join(name.split('.')[:i]) for i in range(1, name.count('.') + 1)}
    for deferred, found in edges.items():
      graphs[deferred][name] = {e for e in found if e in modules and e != name and
                                e not in parents}
  return graphs


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """One cycle (as a path a -> ... -> a) per strongly connected component with a cycle."""
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def strongconnect(v):  # Tarjan's algorithm
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        strongconnect(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = set()
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.add(w)
        if w == v:
          break
      if len(component) > 1:
        cycles.append(_cycle_in(graph, component))

  for v in sorted(graph):
    if v not in index:
      strongconnect(v)
  return cycles


def _cycle_in(graph, component) -> List[str]:
  """A shortest cycle through the component's first module (breadth-first)."""
  start = min(component)
  paths = {start: [start]}
  frontier = [start]
  while frontier:
    nxt = []
    for v in frontier:
      for w in sorted(graph[v] & component):
        if w == start:
          return paths[v] + [start]
        if w not in paths:
          paths[w] = paths[v] + [w]
          nxt.append(w)
    frontier = nxt
  raise AssertionError(f'no cycle in {component}')


class ImportGraphTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.modules = module_files(_PACKAGE)
    cls.graphs = import_graphs(cls.modules)

  def _assert_acyclic(self, deferred):
    cycles = find_cycles(self.graphs[deferred])
    self.assertEqual(cycles, [], 'import cycle(s) in sg2tf (%s imports):\n%s' % (
        'all' if deferred else 'module-level', '\n'.join(' -> '.join(c) for c in cycles)))

  def test_no_module_level_cycle(self):
    self._assert_acyclic(deferred=False)

  def test_no_cycle_counting_deferred_imports(self):
    self._assert_acyclic(deferred=True)

  def test_the_graph_is_read_from_the_sources(self):
    # Guards the checker itself: it must see known edges of both kinds.
    top, full = self.graphs[False], self.graphs[True]
    self.assertIn('sg2tf.utils.files', top['sg2tf.loading'])
    self.assertIn('sg2tf.metrics.registry', top['sg2tf.training.config'])
    self.assertNotIn('sg2tf.networks.serialization', top['sg2tf.loading'])
    self.assertIn('sg2tf.networks.serialization', full['sg2tf.loading'])

  def test_cycles_are_found_and_printed(self):
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a', 'd'}, 'd': set(), 'e': {'e2'}, 'e2': {'e'}}
    self.assertEqual(find_cycles(graph), [['a', 'b', 'c', 'a'], ['e', 'e2', 'e']])
    self.assertEqual(find_cycles({'a': {'b'}, 'b': set()}), [])

  def test_relative_and_package_imports(self):
    modules = {'p': None, 'p.a': None, 'p.b': None}
    node = ast.parse('from . import b\nfrom .b import x\nfrom p import a').body
    self.assertEqual(_targets(node[0], 'p.a', False, modules), ['p.b'])
    self.assertEqual(_targets(node[1], 'p.a', False, modules), ['p.b'])
    self.assertEqual(_targets(node[2], 'p.b', False, modules), ['p.a'])


if __name__ == '__main__':
  unittest.main()
