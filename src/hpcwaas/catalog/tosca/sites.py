"""Where a topology runs: its environment nodes matched to configured environments.

A *site* is where a node runs in the original: the ``AbstractEnvironment`` its requirements
point to, or, for a PyCOMPSs job without one, the job itself (its ``environment.endpoint`` or
``pycomps_endpoint``). A site's host is the environment node's ``cluster_login_host``, else
the literal endpoint of its jobs.

The operator decides which configured environments the sites are, in the order:

1. the tag ``hpcwaas-environments``: either environment IDs (``hpc-a`` or ``hpc-a,hpc-b``:
   the application is deployed on each, every site being that environment), or a map of
   the sites (``Cluster1=hpc-a,Cluster2=hpc-b``): the application is deployed on the
   environment of the first pair (the home), and each node runs on its site's environment
   (a step's ``environment:`` where that is not the home);
2. else the hosts: every configured environment whose host is a site's host;
3. else nothing decides: the file is valid (``validate`` checks the file alone), and the
   catalog reports, when it loads it with the server's environments, that it is not
   deployed (``undecided``).

Sites matched by their hosts are one environment: a workflow whose nodes are on sites with
different hosts is refused, naming the sites (a map runs them on two). A deployment-phase node
on a site mapped off the home is a deployment step on its site's environment: the one
deployment, keyed by the home, runs there too (Alien4Cloud ran it on that location).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpcwaas.catalog.tosca.problems import ToscaProblem
from hpcwaas.catalog.tosca.tags import ENVIRONMENTS_TAG, Tags
from hpcwaas.catalog.tosca.topology import ENVIRONMENT_TYPE, NodeTemplate, Topology
from hpcwaas.catalog.yamlfile import Location

_PLACEHOLDER = re.compile(r"[^A-Za-z0-9_.-]+")
_ENDPOINT_KEYS = (("environment", "endpoint"), ("pycomps_endpoint",))


@dataclass(frozen=True)
class Placement:
    """Our document's environments and what the catalog matches or reports at load."""

    environments: list[str]
    hosts: list[str] = field(default_factory=list)  # matched at load; empty: decided by tag
    undecided: str | None = None  # why no environment is decided (a load warning)
    # the nodes that run off the home (mapped by the tag), workflows' and deployment phase's,
    # by node: their environment
    node_environments: dict[str, str] = field(default_factory=dict)


def endpoint_of(node: NodeTemplate) -> tuple[object, Location] | None:
    """A PyCOMPSs job's endpoint property (value as written) and its place, if it has one."""
    for keys in _ENDPOINT_KEYS:
        value: object = node.properties
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, ""):
            return value, node.property_loc(*keys)
    return None


def site_of(topology: Topology, node: NodeTemplate) -> str | None:
    """The site a node runs on, or None when nothing in the topology says."""
    environment = topology.environment_of(node)
    if environment is not None:
        return environment.name
    return node.name if endpoint_of(node) is not None else None


def site_host(topology: Topology, site: str, members: list[NodeTemplate]) -> str | None:
    """A site's login host as written in the topology, or None."""
    node = topology.nodes.get(site)
    if node is not None and node.type == ENVIRONMENT_TYPE:
        host = node.properties.get("cluster_login_host")
        if isinstance(host, str) and host:
            return host
    for member in members:
        found = endpoint_of(member)
        if found is not None and isinstance(found[0], str):
            return found[0]
    return None


def place_topology(
    topology: Topology,
    tags: Tags,
    workflow_nodes: dict[str, list[str]],
    problems: list[ToscaProblem],
    deployment_nodes: list[str] | None = None,
) -> Placement:
    """The environments of the application; refusals are added to ``problems``.

    ``workflow_nodes``: the nodes each imported workflow runs; ``deployment_nodes``: those
    of the deployment phase (placed like the workflows' nodes).
    """
    sites: dict[str, list[NodeTemplate]] = {}
    for name in dict.fromkeys(n for nodes in workflow_nodes.values() for n in nodes):
        site = site_of(topology, topology.nodes[name])
        if site is not None:
            sites.setdefault(site, []).append(topology.nodes[name])
    sites.update({n: sites.get(n, []) for n, node in topology.nodes.items() if _is_env(node)})
    mapping = _tag_map(tags, list(sites), problems)
    hosts = {s: site_host(topology, s, members) for s, members in sites.items()}
    if mapping is not None:
        return _mapped(topology, mapping, workflow_nodes, deployment_nodes or [])
    if tags.environments:
        return Placement(list(dict.fromkeys(tags.environments)))
    for workflow, nodes in workflow_nodes.items():
        used = {s: hosts.get(s) for n in nodes if (s := site_of(topology, topology.nodes[n]))}
        if len({h for h in used.values() if h is not None}) > 1:
            listing = "; ".join(f"{s}: {h}" for s, h in used.items() if h is not None)
            problems.append(
                ToscaProblem(
                    topology_workflow_loc(workflow),
                    f"workflow {workflow!r} runs its nodes on sites with different hosts "
                    f"({listing}); sites matched by host are one environment",
                    f"map each environment node to its environment with the tag "
                    f"{ENVIRONMENTS_TAG} ({', '.join(f'{s}=<environment>' for s in used)})",
                )
            )
    found = list(dict.fromkeys(h for h in hosts.values() if h is not None))
    if found:
        return Placement([_PLACEHOLDER.sub("-", h).strip("-.") or "host" for h in found], found)
    names = ", ".join(sites) or "no environment node"
    return Placement(
        list(sites) or ["unplaced"],
        undecided=f"nothing decides where it runs ({names}: no cluster_login_host or "
        f"endpoint, and no tag {ENVIRONMENTS_TAG})",
    )


def _mapped(
    topology: Topology,
    mapping: dict[str, str],
    workflow_nodes: dict[str, list[str]],
    deployment_nodes: list[str],
) -> Placement:
    """The tag map's placement: deployed on the first pair's environment, nodes on theirs."""
    if not mapping:
        return Placement(["unplaced"])  # the tag's problems say why
    home = next(iter(mapping.values()))
    off_home: dict[str, str] = {}
    workflows_run = (n for nodes in workflow_nodes.values() for n in nodes)
    for name in dict.fromkeys([*workflows_run, *deployment_nodes]):
        site = site_of(topology, topology.nodes[name])
        environment = mapping.get(site) if site is not None else None
        if environment is not None and environment != home:
            off_home[name] = environment
    return Placement([home], node_environments=off_home)


def topology_workflow_loc(workflow: str) -> Location:
    """The place of a workflow in the topology."""
    return ("topology_template", "workflows", workflow)


def _is_env(node: NodeTemplate) -> bool:
    return node.type == ENVIRONMENT_TYPE


def _tag_map(tags: Tags, sites: list[str], problems: list[ToscaProblem]) -> dict[str, str] | None:
    """The ``Site=environment`` map of the tag, or None when it lists environments."""
    pairs = [item.partition("=") for item in tags.environments]
    if not any(sep for _, sep, _ in pairs):
        return None
    loc: Location = ("metadata", ENVIRONMENTS_TAG)
    if not all(sep and site and env for site, sep, env in pairs):
        problems.append(
            ToscaProblem(
                loc,
                f"tag {ENVIRONMENTS_TAG} mixes environment IDs and Node=environment pairs",
                "write either one environment ID, or a pair for every environment node "
                f"({', '.join(f'{s}=<environment>' for s in sites) or 'none'})",
            )
        )
        return None
    mapping = {site.strip(): env.strip() for site, _, env in pairs}
    for site in mapping:
        if site not in sites:
            problems.append(
                ToscaProblem(
                    loc,
                    f"tag {ENVIRONMENTS_TAG} maps {site!r}, which is no environment node",
                    f"map the environment nodes: {', '.join(sites) or 'none'}",
                )
            )
    for site in sites:
        if site not in mapping:
            problems.append(
                ToscaProblem(
                    loc,
                    f"tag {ENVIRONMENTS_TAG} does not map the environment node {site!r}",
                    f"add {site}=<environment>",
                )
            )
    return {s: e for s, e in mapping.items() if s in sites}
