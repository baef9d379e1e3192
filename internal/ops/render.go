package ops

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON that status and history print;
// it changes only when a field changes meaning or goes away.
const SchemaVersion = 1

// maxEndpointNames is how many ready endpoints the table names.
const maxEndpointNames = 6

// WriteStatusTable writes the compact status table. color adds ANSI
// colors, for a terminal only. Ages count from s.Time. Pure.
func WriteStatusTable(w io.Writer, s Status, color bool) {
	p := painter(color)
	row := func(label, value string) { fmt.Fprintf(w, "%-11s %s\n", label, value) }

	row("environment", fmt.Sprintf("%s · %s · namespace %s · service %s", orDash(s.Environment), orDash(s.Strategy), s.Namespace, s.Service))
	a := s.Active
	switch {
	case a.Color != "":
		row("active", fmt.Sprintf("%s (deployment %s, revision %d)", p.paint(a.Color, colorBold), a.Deployment, a.Revision))
	case s.Strategy == "blue-green":
		row("active", fmt.Sprintf("deployment %s, revision %d (no color yet: the first blue-green deploy adopts it)", a.Deployment, a.Revision))
	default:
		row("active", fmt.Sprintf("revision %s (deployment %s)", p.paint(fmt.Sprint(a.Revision), colorBold), a.Deployment))
	}
	row("image", a.Image)
	row("replicas", replicasText(p, a))
	if a.RestartedAt != "" {
		row("restarted", a.RestartedAt)
	}
	if i := s.Idle; i != nil {
		row("idle", fmt.Sprintf("%s (deployment %s, revision %d): %s, %d/%d ready", i.Color, i.Deployment, i.Revision, orDash(i.Image), i.Ready, i.Desired))
	}
	if a := s.Awaiting; a != nil {
		color := colorYellow
		if a.Edited {
			color = colorRed
		}
		row("awaiting", p.paint(awaitingText(s.Time, *a), color))
		if !a.Edited {
			row("", "promote: "+awaitingCommand(s, "promote"))
		}
		row("", "reject:  "+awaitingCommand(s, "reject"))
	}
	row("endpoints", endpointsText(p, s.Endpoints))
	if l := s.Lock; l != nil {
		text := "held by " + l.Holder.String()
		if !l.Since.IsZero() {
			text += fmt.Sprintf(" since %s (%s)", l.Since.UTC().Format("15:04:05 UTC"), formatAge(s.Time, l.Since))
		}
		row("lock", p.paint(text, colorYellow))
	} else {
		row("lock", "free")
	}
	if h := s.Health; h != nil {
		row("health", healthText(p, h))
	}
	for _, problem := range s.Problems {
		row("problem", p.paint(problem, colorRed))
	}
	fmt.Fprintln(w)
	if len(s.Recent) == 0 {
		fmt.Fprintln(w, "recent      no deployments recorded yet")
		return
	}
	fmt.Fprintln(w, "recent deployments and actions")
	rows := make([][]cell, 0, len(s.Recent))
	for _, e := range s.Recent {
		rows = append(rows, []cell{
			{shortID(e.ID), ""}, {e.Result, resultColor(e.Result)}, {orDash(e.Image), ""}, {orDash(e.Actor), ""},
			{formatAge(s.Time, e.When()), ""}, {formatDuration(e.Duration()), ""},
		})
	}
	writeTable(w, p, "  ", []string{"ID", "RESULT", "IMAGE", "WHO", "AGE", "TOOK"}, rows)
}

func replicasText(p painter, a Workload) string {
	text := fmt.Sprintf("%d/%d ready (%d updated, %d available)", a.Ready, a.Desired, a.Updated, a.Available)
	switch {
	case a.Desired > 0 && a.Ready == 0:
		return p.paint(text, colorRed)
	case a.Ready < a.Desired:
		return p.paint(text, colorYellow)
	}
	return p.paint(text, colorGreen)
}

func endpointsText(p painter, e Endpoints) string {
	text := fmt.Sprintf("%d ready", len(e.Ready))
	if len(e.Ready) > 0 {
		names := e.Ready
		more := ""
		if len(names) > maxEndpointNames {
			names, more = names[:maxEndpointNames], fmt.Sprintf(" and %d more", len(e.Ready)-maxEndpointNames)
		}
		text += ": " + strings.Join(names, ", ") + more
	}
	if e.NotReady > 0 {
		text += p.paint(fmt.Sprintf("; %d not ready", e.NotReady), colorYellow)
	}
	if len(e.Ready) == 0 {
		return p.paint(text, colorRed)
	}
	return text
}

func healthText(p painter, h *HealthAnswer) string {
	where := h.Path + " on " + h.Target // a service proxy target is a description
	if strings.HasPrefix(h.Target, "http://") || strings.HasPrefix(h.Target, "https://") {
		where = strings.TrimSuffix(h.Target, "/") + h.Path
	}
	if h.StatusCode == 0 {
		return p.paint("no answer: "+orDash(h.Err), colorRed) + " · " + where
	}
	parts := []string{fmt.Sprint(h.StatusCode)}
	if h.Version != "" {
		parts = append(parts, "version "+h.Version)
	}
	parts = append(parts, formatLatency(h.Latency))
	text := strings.Join(parts, " · ")
	if h.OK {
		text = p.paint(text, colorGreen)
	} else {
		text = p.paint(text, colorRed)
	}
	return text + " · " + where
}

// Views of the JSON output: stable names for scripts, durations in
// milliseconds or seconds as the field name says.
type (
	statusView struct {
		SchemaVersion int           `json:"schemaVersion"`
		Time          time.Time     `json:"time"`
		Environment   string        `json:"environment"`
		Namespace     string        `json:"namespace"`
		Deployment    string        `json:"deployment"`
		Service       string        `json:"service"`
		Strategy      string        `json:"strategy"`
		Active        workloadView  `json:"active"`
		Idle          *workloadView `json:"idle"`
		Awaiting      *awaitingView `json:"awaitingPromotion"`
		Endpoints     endpointsView `json:"endpoints"`
		Lock          *lockView     `json:"lock"`
		Health        *healthView   `json:"health"`
		Recent        []entryView   `json:"recent"`
		Problems      []string      `json:"problems"`
	}
	awaitingView struct {
		Color         string    `json:"color"`
		Deployment    string    `json:"deployment"`
		Image         string    `json:"image"`
		PreviousImage string    `json:"previousImage,omitempty"`
		VerifiedAt    time.Time `json:"verifiedAt"`
		Actor         string    `json:"actor,omitempty"`
		RunURL        string    `json:"runUrl,omitempty"`
		DeploymentID  string    `json:"deploymentId,omitempty"`
		Edited        bool      `json:"edited"`
	}
	workloadView struct {
		Deployment  string       `json:"deployment"`
		Color       string       `json:"color,omitempty"`
		Revision    int64        `json:"revision"`
		Image       string       `json:"image"`
		Replicas    replicasView `json:"replicas"`
		RestartedAt string       `json:"restartedAt,omitempty"`
	}
	replicasView struct {
		Desired   int32 `json:"desired"`
		Ready     int32 `json:"ready"`
		Updated   int32 `json:"updated"`
		Available int32 `json:"available"`
	}
	endpointsView struct {
		Ready    []string `json:"ready"`
		NotReady int      `json:"notReady"`
	}
	lockView struct {
		Holder     string     `json:"holder"`
		ID         string     `json:"id"`
		Actor      string     `json:"actor,omitempty"`
		Repository string     `json:"repository,omitempty"`
		RunURL     string     `json:"runURL,omitempty"`
		Since      *time.Time `json:"since,omitempty"`
	}
	healthView struct {
		Target     string  `json:"target"`
		Path       string  `json:"path"`
		StatusCode int     `json:"statusCode"`
		OK         bool    `json:"ok"`
		Version    string  `json:"version,omitempty"`
		LatencyMS  float64 `json:"latencyMs"`
		Error      string  `json:"error,omitempty"`
	}
	entryView struct {
		ID              string     `json:"id"`
		Result          string     `json:"result"`
		Image           string     `json:"image"`
		PreviousImage   string     `json:"previousImage,omitempty"`
		Reason          string     `json:"reason,omitempty"`
		Actor           string     `json:"actor,omitempty"`
		RunURL          string     `json:"runURL,omitempty"`
		ActiveColor     string     `json:"activeColor,omitempty"`
		Revision        int64      `json:"revision,omitempty"`
		StartedAt       *time.Time `json:"startedAt,omitempty"`
		FinishedAt      *time.Time `json:"finishedAt,omitempty"`
		DurationSeconds float64    `json:"durationSeconds"`
		RolledBack      bool       `json:"rolledBack"`
	}
)

func workloadOf(w Workload) workloadView {
	return workloadView{Deployment: w.Deployment, Color: w.Color, Revision: w.Revision, Image: w.Image, RestartedAt: w.RestartedAt,
		Replicas: replicasView{Desired: w.Desired, Ready: w.Ready, Updated: w.Updated, Available: w.Available}}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func entriesOf(entries []Entry) []entryView {
	out := make([]entryView, 0, len(entries))
	for _, e := range entries {
		out = append(out, entryView{
			ID: e.ID, Result: e.Result, Image: e.Image, PreviousImage: e.PreviousImage, Reason: e.Reason, Actor: e.Actor, RunURL: e.RunURL,
			ActiveColor: e.ActiveColor, Revision: e.Revision, StartedAt: timePtr(e.StartedAt), FinishedAt: timePtr(e.FinishedAt),
			DurationSeconds: e.Duration().Seconds(), RolledBack: e.RolledBack,
		})
	}
	return out
}

// WriteStatusJSON writes the status as indented JSON for scripts: lock and
// health are null when free or not probed, lists are never null. Pure.
func WriteStatusJSON(w io.Writer, s Status) error {
	v := statusView{
		SchemaVersion: SchemaVersion, Time: s.Time.UTC(), Environment: s.Environment, Namespace: s.Namespace,
		Deployment: s.Deployment, Service: s.Service, Strategy: s.Strategy, Active: workloadOf(s.Active),
		Endpoints: endpointsView{Ready: s.Endpoints.Ready, NotReady: s.Endpoints.NotReady},
		Recent:    entriesOf(s.Recent), Problems: s.Problems,
	}
	if v.Endpoints.Ready == nil {
		v.Endpoints.Ready = []string{}
	}
	if v.Problems == nil {
		v.Problems = []string{}
	}
	if s.Idle != nil {
		idle := workloadOf(*s.Idle)
		v.Idle = &idle
	}
	if a := s.Awaiting; a != nil {
		v.Awaiting = &awaitingView{Color: a.Color, Deployment: a.Deployment, Image: a.Image, PreviousImage: a.PreviousImage,
			VerifiedAt: a.VerifiedAt.UTC(), Actor: a.Actor, RunURL: a.RunURL, DeploymentID: a.DeploymentID, Edited: a.Edited}
	}
	if l := s.Lock; l != nil {
		v.Lock = &lockView{Holder: l.Holder.String(), ID: l.Holder.ID, Actor: l.Holder.Actor, Repository: l.Holder.Repository, RunURL: l.Holder.RunURL, Since: timePtr(l.Since)}
	}
	if h := s.Health; h != nil {
		v.Health = &healthView{Target: h.Target, Path: h.Path, StatusCode: h.StatusCode, OK: h.OK, Version: h.Version,
			LatencyMS: float64(h.Latency.Microseconds()) / 1000, Error: h.Err}
	}
	return writeJSON(w, v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// historyReasonWidth bounds the reason column of the history table.
const historyReasonWidth = 72

// WriteHistoryTable writes history entries, newest first, as a table with
// full ids (report --deployment-id takes them) and UTC times. color adds
// ANSI colors, for a terminal only. Pure.
func WriteHistoryTable(w io.Writer, entries []Entry, color bool) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no deployments recorded yet")
		return
	}
	rows := make([][]cell, 0, len(entries))
	for _, e := range entries {
		when := "-"
		if t := e.When(); !t.IsZero() {
			when = t.UTC().Format("2006-01-02 15:04:05")
		}
		rolledBack := "no"
		if e.RolledBack {
			rolledBack = "yes"
		}
		rows = append(rows, []cell{
			{e.ID, ""}, {e.Result, resultColor(e.Result)}, {orDash(e.Image), ""}, {orDash(e.PreviousImage), ""},
			{orDash(e.Actor), ""}, {when, ""}, {formatDuration(e.Duration()), ""}, {rolledBack, ""}, {truncate(e.Reason, historyReasonWidth), colorDim},
		})
	}
	writeTable(w, painter(color), "", []string{"ID", "RESULT", "IMAGE", "PREVIOUS", "WHO", "WHEN (UTC)", "TOOK", "ROLLED BACK", "REASON"}, rows)
}

// WriteHistoryJSON writes history entries as an indented JSON array. Pure.
func WriteHistoryJSON(w io.Writer, entries []Entry) error {
	return writeJSON(w, entriesOf(entries))
}

// StatusMarkdown is the status as a job summary. Pure.
func StatusMarkdown(s Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### greenlight status: %s\n\n", mdCell(s.Environment))
	a := s.Active
	active := fmt.Sprintf("revision %d (%s)", a.Revision, mdCode(a.Deployment))
	if a.Color != "" {
		active = fmt.Sprintf("**%s** (%s, revision %d)", a.Color, mdCode(a.Deployment), a.Revision)
	}
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Strategy | %s |\n| Active | %s |\n| Image | %s |\n| Replicas | %d/%d ready |\n| Endpoints | %d ready, %d not ready |\n",
		mdCell(s.Strategy), active, mdCode(a.Image), a.Ready, a.Desired, len(s.Endpoints.Ready), s.Endpoints.NotReady)
	if i := s.Idle; i != nil {
		fmt.Fprintf(&b, "| Idle | %s (%s, %s, %d/%d ready) |\n", i.Color, mdCode(i.Deployment), mdCode(i.Image), i.Ready, i.Desired)
	}
	if a := s.Awaiting; a != nil {
		fmt.Fprintf(&b, "| Awaiting promotion | %s |\n", mdCell(awaitingText(s.Time, *a)))
		if !a.Edited {
			fmt.Fprintf(&b, "| Promote | %s |\n", mdCode(awaitingCommand(s, "promote")))
		}
		fmt.Fprintf(&b, "| Reject | %s |\n", mdCode(awaitingCommand(s, "reject")))
	}
	lock := "free"
	if s.Lock != nil {
		lock = "held by " + mdCell(s.Lock.Holder.String())
	}
	fmt.Fprintf(&b, "| Lock | %s |\n", lock)
	if h := s.Health; h != nil {
		fmt.Fprintf(&b, "| Health | %s |\n", mdCell(healthText(false, h)))
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "| Problem | %s |\n", mdCell(p))
	}
	if len(s.Recent) > 0 {
		b.WriteString("\n" + historyMarkdown(s.Recent, s.Time))
	}
	return b.String()
}

// HistoryMarkdown is history entries as a job summary table. Pure.
func HistoryMarkdown(environment string, entries []Entry, now time.Time) string {
	return fmt.Sprintf("### greenlight history: %s\n\n", mdCell(environment)) + historyMarkdown(entries, now)
}

func historyMarkdown(entries []Entry, now time.Time) string {
	if len(entries) == 0 {
		return "No deployments recorded yet.\n"
	}
	var b strings.Builder
	b.WriteString("| ID | Result | Image | Who | When | Took | Reason |\n|---|---|---|---|---|---|---|\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCode(shortID(e.ID)), mdCell(e.Result), mdCode(e.Image), mdCell(e.Actor),
			formatAge(now, e.When()), formatDuration(e.Duration()), mdCell(truncate(e.Reason, historyReasonWidth)))
	}
	return b.String()
}

// ScaleMarkdown is a scale as a job summary. Pure.
func ScaleMarkdown(environment string, r ScaleResult, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### greenlight scale: %s\n\n", mdCell(environment))
	if err != nil {
		fmt.Fprintf(&b, "❌ Scaling %s to %d replicas failed: %s\n", mdCode(r.Active.Deployment), r.To, mdCell(err.Error()))
		return b.String()
	}
	if r.Unchanged {
		fmt.Fprintf(&b, "✅ %s already had %d replicas; %d are ready.\n", mdCode(r.Active.Deployment), r.To, r.Ready.Ready)
		return b.String()
	}
	fmt.Fprintf(&b, "✅ Scaled %s (%s) from %d to %d replicas", mdCode(r.Active.Deployment), mdCode(r.Image), r.From, r.To)
	if r.Endpoints > 0 {
		fmt.Fprintf(&b, "; %d ready, %d endpoints serving", r.Ready.Ready, r.Endpoints)
	}
	fmt.Fprintf(&b, " in %s.\n", formatDuration(r.Took))
	return b.String()
}

// MaintenanceMarkdown is a maintenance switch as a job summary. Pure.
func MaintenanceMarkdown(environment string, r MaintenanceResult, err error) string {
	var b strings.Builder
	s := r.Before
	fmt.Fprintf(&b, "### greenlight maintenance %s: %s\n\n", stateWord(r.On), mdCell(environment))
	switch {
	case err != nil:
		fmt.Fprintf(&b, "❌ Maintenance %s failed: %s\n", stateWord(r.On), mdCell(err.Error()))
	case r.Unchanged:
		fmt.Fprintf(&b, "✅ Maintenance was already %s (%s %s=%s); nothing changed.\n", stateWord(r.On), mdCode(s.ConfigMap), mdCell(s.Key), mdCode(s.Value))
	default:
		fmt.Fprintf(&b, "✅ Maintenance %s: %s %s=%s, %s restarted (revision %d → %d) in %s", stateWord(r.On), mdCode(s.ConfigMap), mdCell(s.Key), mdCode(r.Value),
			mdCode(s.Active.Deployment), r.FromRevision, r.ToRevision, formatDuration(r.Took))
		if h := r.Health; h != nil {
			fmt.Fprintf(&b, "; health answered %d", h.StatusCode)
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// MaintenanceText says where maintenance mode stands, in one line. Pure.
func MaintenanceText(s MaintenanceState) string {
	where := fmt.Sprintf("configmap %s key %s", s.ConfigMap, s.Key)
	var text string
	switch {
	case !s.Exists:
		text = fmt.Sprintf("maintenance is off: %s does not exist", where)
	case !s.KeySet:
		text = fmt.Sprintf("maintenance is off: %s is not set", where)
	case !s.Known:
		text = fmt.Sprintf("maintenance is unknown: %s is %q, neither on nor off", where, s.Value)
	default:
		text = fmt.Sprintf("maintenance is %s: %s is %q", stateWord(s.On), where, s.Value)
	}
	text += fmt.Sprintf("; deployment %s", s.Active.Deployment)
	switch {
	case s.Applied == "":
		text += " was not restarted by a maintenance command"
	case s.Pending():
		text += fmt.Sprintf(" runs pods started with maintenance %s: restart it to apply", s.Applied)
	default:
		text += fmt.Sprintf(" runs pods started with maintenance %s", s.Applied)
	}
	return text
}

// awaitingText says which version waits for promotion, since when and by
// whom, and whether it can still be promoted. Pure.
func awaitingText(now time.Time, a Awaiting) string {
	text := fmt.Sprintf("%s (deployment %s) runs %s, verified", a.Color, a.Deployment, orDash(a.Image))
	if !a.VerifiedAt.IsZero() {
		text += fmt.Sprintf(" at %s (%s)", a.VerifiedAt.UTC().Format("2006-01-02 15:04:05 UTC"), formatAge(now, a.VerifiedAt))
	}
	if a.Actor != "" {
		text += " by " + a.Actor
	}
	if a.Edited {
		return text + "; its pod template was edited since, so promote refuses it: reject it, or deploy again"
	}
	return text + ", without traffic"
}

// awaitingCommand is the command that promotes or rejects the waiting
// color of s. Pure.
func awaitingCommand(s Status, verb string) string {
	return fmt.Sprintf("greenlight %s --environment=%s --namespace=%s --deployment=%s", verb, s.Environment, s.Namespace, s.Deployment)
}
