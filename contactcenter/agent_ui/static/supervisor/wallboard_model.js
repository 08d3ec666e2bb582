// The wallboard's model: a snapshot plus events equals a fresh snapshot.
// Mirrors contactcenter/reports/wallboard.py: service level = answered within target /
// (answered + abandoned); ASA = mean wait of those answered; windows: today and 15 min.
const RECENT_MS = 15 * 60 * 1000;

export class WallboardModel {
  constructor(snapshot) {
    this.thresholds = snapshot.thresholds;
    this.dayStart = Date.parse(snapshot.day_start);
    this.cursor = snapshot.last_event_id || 0;
    this.tiles = new Map();
    this.agents = new Map();
    this.unknown = false;   // an event named a queue or agent the snapshot lacks: resync
    for (const t of snapshot.tiles) {
      this.tiles.set(`${t.queue_id}:${t.kind}`, {
        queue_id: t.queue_id, queue: t.queue, kind: t.kind, active: t.active,
        target: t.target_seconds, goal: t.sl_goal_percent,
        waiting: new Map(t.waiting.map(([id, at]) => [id, Date.parse(at)])),
        unlisted: Math.max(0, t.waiting_now - t.waiting.length),
        answeredIds: new Set(t.answered_ids),
        today: { answered: t.today.answered, within: t.today.within_target,
                 abandoned: t.today.abandoned, waitTotal: t.today_wait_total },
        recent: t.recent.map(([at, wait]) => ({ at: Date.parse(at), wait })),
      });
    }
    for (const a of snapshot.agents) {
      this.agents.set(a.id, { id: a.id, name: a.name, presence: a.presence,
        since: Date.parse(a.since), held: new Map(a.held.map(([id, at]) => [id, at ? Date.parse(at) : null])),
        offers: new Set(), load: Object.values(a.capacity).reduce((n, [load]) => n + load, 0) - a.held.length });
    }
  }

  forget(itemId) {
    for (const tile of this.tiles.values()) tile.waiting.delete(itemId);
    for (const agent of this.agents.values()) {
      agent.held.delete(itemId);
      if (agent.offers.delete(itemId)) agent.load = Math.max(0, agent.load - 1);
    }
  }

  apply(event) {
    if (event.id <= this.cursor) return false;
    this.cursor = event.id;
    const p = event.payload || {};
    const at = Date.parse(event.at.endsWith("Z") || event.at.includes("+") ? event.at : `${event.at}Z`);
    const tile = this.tiles.get(`${p.queue_id}:${p.kind}`);
    const agent = this.agents.get(p.agent_id);
    switch (event.type) {
      case "item.queued":
        if (!tile) { this.unknown = true; return true; }
        this.forget(p.item_id);
        tile.waiting.set(p.item_id, Date.parse(p.enqueued_at));
        tile.active = true;
        return true;
      case "offer.made":
        if (agent && !agent.offers.has(p.item_id)) { agent.offers.add(p.item_id); agent.load += 1; }
        return true;
      case "offer.declined": case "offer.expired": case "offer.withdrawn":
        for (const a of this.agents.values()) if (a.offers.delete(p.item_id)) a.load = Math.max(0, a.load - 1);
        return true;
      case "item.assigned": {
        if (!tile) { this.unknown = true; return true; }
        this.forget(p.item_id);
        if (at >= this.dayStart && !tile.answeredIds.has(p.item_id)) {
          const wait = Math.max(0, Math.floor((at - Date.parse(p.enqueued_at)) / 1000));
          tile.answeredIds.add(p.item_id);
          tile.today.answered += 1;
          tile.today.waitTotal += wait;
          if (wait <= tile.target) tile.today.within += 1;
          tile.recent.push({ at, wait });
          tile.active = true;
        }
        if (agent) agent.held.set(p.item_id, at); else if (p.agent_id) this.unknown = true;
        return true;
      }
      case "item.abandoned":
        if (!tile) { this.unknown = true; return true; }
        this.forget(p.item_id);
        if (at >= this.dayStart) { tile.today.abandoned += 1; tile.recent.push({ at, wait: null }); }
        tile.active = true;
        return true;
      case "item.completed": case "item.transferred":
        this.forget(p.item_id);
        return true;
      case "agent.presence_changed":
        if (!agent) { this.unknown = true; return true; }
        agent.presence = p.presence;
        agent.since = Date.parse(p.since);
        return true;
      default:
        return false;
    }
  }

  tileFigures(tile, now) {
    const waits = [...tile.waiting.values()];
    const oldest = waits.length ? Math.min(...waits) : null;
    const recent = tile.recent.filter((r) => r.at >= now - RECENT_MS);
    const r = { answered: 0, within: 0, abandoned: 0, waitTotal: 0 };
    for (const o of recent) {
      if (o.wait === null) r.abandoned += 1;
      else { r.answered += 1; r.waitTotal += o.wait; if (o.wait <= tile.target) r.within += 1; }
    }
    const figures = (w) => {
      const handled = w.answered + w.abandoned;
      return {
        answered: w.answered, within_target: w.within, abandoned: w.abandoned,
        service_level: handled ? round4(w.within / handled) : null,
        abandonment: handled ? round4(w.abandoned / handled) : null,
        asa_seconds: w.answered ? Math.round((w.waitTotal / w.answered) * 10) / 10 : null,
      };
    };
    return {
      waiting_now: tile.waiting.size + tile.unlisted,
      longest_wait_seconds: oldest === null ? 0 : Math.max(0, Math.floor((now - oldest) / 1000)),
      today: figures(tile.today), last_15_min: figures(r),
    };
  }

  levels(tile, f) {
    const t = this.thresholds;
    const sl = (v) => v === null ? "ok" : v * 100 < tile.goal - t.sl_red_margin_percent ? "red"
      : v * 100 < tile.goal ? "amber" : "ok";
    const wait = f.longest_wait_seconds >= t.wait_red_seconds ? "red"
      : f.longest_wait_seconds >= t.wait_amber_seconds ? "amber" : "ok";
    const ab = f.today.abandonment;
    const abandon = ab === null ? "ok" : ab * 100 >= t.abandon_red_percent ? "red"
      : ab * 100 >= t.abandon_amber_percent ? "amber" : "ok";
    return { wait, sl_15: sl(f.last_15_min.service_level), sl_today: sl(f.today.service_level), abandonment: abandon };
  }

  agentState(agent) {
    const p = agent.presence;
    if (p === "offline") return "offline";
    if (p === "away") return "away";
    if (p === "wrap_up") return "wrap_up";
    if (p === "busy" || agent.held.size + agent.load > 0) return "on_contact";
    return "available";
  }

  agentSince(agent) {
    if (this.agentState(agent) === "on_contact" && agent.presence === "available" && agent.held.size) {
      const starts = [...agent.held.values()].filter((v) => v !== null);
      if (starts.length) return Math.max(agent.since, Math.min(...starts));
    }
    return agent.since;
  }
}

function round4(v) { return Math.round(v * 10000) / 10000; }
