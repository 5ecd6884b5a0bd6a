package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/notify"
)

func runAlertAdd(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	below := fs.String("below", "", "fire when the balance is at or below AMOUNT credits")
	belowPercent := fs.String("below-percent", "", "fire when the balance is below P% of the monthly allocation")
	usagePercent := fs.String("usage-percent", "", "fire when usage this cycle reaches P% of the monthly cap and of every team and user limit (with --team: of that team's limit)")
	runway := fs.Int("runway-days", 0, "fire when, at the last 7 days' spend, the credits run out within D days")
	depleted := fs.Bool("depleted", false, "fire when the balance is at or below zero (in debt: the org is paused)")
	team := fs.String("team", "", "the team whose limit a --usage-percent rule watches")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	r := ledger.NewAlertRule{OrgID: pos[0], Team: *team}
	kinds := 0
	if *below != "" {
		kinds++
		amount, err := parsePositive("below", *below)
		if err != nil {
			return err
		}
		r.Kind, r.Amount = ledger.AlertBelow, &amount
	}
	for _, f := range []struct {
		name, value string
		kind        ledger.AlertKind
	}{{"below-percent", *belowPercent, ledger.AlertBelowPercent}, {"usage-percent", *usagePercent, ledger.AlertUsagePercent}} {
		if f.value == "" {
			continue
		}
		kinds++
		p, err := credits.ParsePercent(f.value)
		if err != nil {
			return invalid(f.name, "%q: %v", f.value, err)
		}
		r.Kind, r.Percent = f.kind, &p
	}
	if isSet(fs, "runway-days") {
		kinds++
		r.Kind, r.Days = ledger.AlertRunway, *runway
		if *runway < 1 || *runway > 366 {
			return invalid("runway-days", "must be from 1 to 366")
		}
	}
	if *depleted {
		kinds++
		r.Kind = ledger.AlertDepleted
	}
	if kinds != 1 {
		return usageErrorf(c, "give exactly one of --below, --below-percent, --usage-percent, --runway-days, --depleted")
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if _, err := a.openOrg(r.OrgID); err != nil {
		return err
	}
	var rule ledger.AlertRule
	var created bool
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		rule, created, err = a.ledger.AddAlertRule(a.ctx, tx, r)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(struct {
			ledger.AlertRule
			Created bool `json:"created"`
		}{rule, created})
	}
	verb := "added"
	if !created {
		verb = "exists already"
	}
	a.printf("rule %d of %s %s: %s\n", rule.ID, rule.OrgID, verb, describeRule(rule))
	return nil
}

func runAlertList(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if _, err := a.openOrg(pos[0]); err != nil {
		return err
	}
	rules, err := a.ledger.AlertRules(a.ctx, a.pool, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(struct {
			Rules []ledger.AlertRule `json:"rules"`
		}{rules})
	}
	tw := a.table()
	fmt.Fprintln(tw, "ID\tRULE\tSOURCE\tSTATE")
	for _, r := range rules {
		state := "armed"
		var fired []string
		for _, f := range r.Fired {
			if f.Armed {
				continue
			}
			who := f.Scope
			if f.Subject != "" {
				who += " " + f.Subject
			}
			fired = append(fired, fmt.Sprintf("%s at %s", who, f.At.Format(time.RFC3339)))
		}
		if len(fired) > 0 {
			state = "fired: " + strings.Join(fired, "; ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.ID, describeRule(r), r.Source, state)
	}
	return tw.Flush()
}

func runAlertRemove(a *app, c *command, args []string) error {
	return a.removeByID(c, args, "rule", func(tx pgx.Tx, org string, id int64) error {
		return a.ledger.RemoveAlertRule(a.ctx, tx, org, id)
	})
}

// removeByID runs `... remove ORG ID` for a thing of the org named what.
func (a *app) removeByID(c *command, args []string, what string, remove func(tx pgx.Tx, org string, id int64) error) error {
	pos, err := a.parse(c, newFlagSet(c), args, "org", "id")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || id < 1 {
		return invalid("id", "%q is not a %s id", pos[1], what)
	}
	if _, err := a.openOrg(pos[0]); err != nil {
		return err
	}
	if err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) error { return remove(tx, pos[0], id) }); err != nil {
		return err
	}
	a.printf("%s %d of %s removed\n", what, id, pos[0])
	return nil
}

// describeRule says what a rule watches, in words.
func describeRule(r ledger.AlertRule) string {
	switch r.Kind {
	case ledger.AlertBelow:
		return "balance at or below " + r.Amount.String()
	case ledger.AlertBelowPercent:
		return "balance below " + r.Percent.String() + "% of the monthly allocation"
	case ledger.AlertUsagePercent:
		if r.Team != "" {
			return "usage at " + r.Percent.String() + "% of team " + r.Team + "'s limit"
		}
		return "usage at " + r.Percent.String() + "% of the monthly cap or a team or user limit"
	case ledger.AlertDepleted:
		return "balance depleted (org paused when in debt)"
	case ledger.AlertRunway:
		return fmt.Sprintf("credits run out within %d days", r.Days)
	}
	return string(r.Kind)
}

// webhookPolicy reads the webhook settings of the environment the workers
// deliver with, so the CLI refuses what they would.
func (a *app) webhookPolicy() (notify.WebhookOptions, error) {
	allowPrivate, requireHTTPS, err := config.WebhookPolicyFromEnv(a.getenv)
	if err != nil {
		return notify.WebhookOptions{}, err
	}
	return notify.WebhookOptions{AllowPrivate: allowPrivate, RequireHTTPS: requireHTTPS}, nil
}

func runWebhookAdd(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	secret := fs.String("secret", "", "the receiver's signing secret: whsec_ and base64 (Standard Webhooks), or 16-256 bytes used as they are (required)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org", "url")
	if err != nil {
		return err
	}
	policy, err := a.webhookPolicy()
	if err != nil {
		return err
	}
	if err := jobs.CheckWebhook(pos[1], *secret, policy); err != nil {
		return err
	}
	if _, err := a.openOrg(pos[0]); err != nil {
		return err
	}
	var w ledger.Webhook
	if err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		w, err = a.ledger.AddWebhook(a.ctx, tx, pos[0], pos[1], *secret)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(w)
	}
	a.printf("webhook %d of %s: %s\n", w.ID, w.OrgID, w.URL)
	return nil
}

func runWebhookList(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	hooks, err := a.ledger.Webhooks(a.ctx, a.pool, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(struct {
			Webhooks []ledger.Webhook `json:"webhooks"`
		}{hooks})
	}
	tw := a.table()
	fmt.Fprintln(tw, "ID\tURL\tADDED")
	for _, w := range hooks {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", w.ID, w.URL, w.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runWebhookRemove(a *app, c *command, args []string) error {
	return a.removeByID(c, args, "webhook", func(tx pgx.Tx, org string, id int64) error {
		return a.ledger.RemoveWebhook(a.ctx, tx, org, id)
	})
}

func runNotifications(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	limit := fs.Int("limit", ledger.MaxNotificationsPage, "how many, newest first")
	before := fs.Int64("before", 0, "only those older than this notification id (the next_before of a full page)")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > ledger.MaxNotificationsPage {
		return invalid("limit", "must be from 1 to %d", ledger.MaxNotificationsPage)
	}
	if _, err := a.openOrg(pos[0]); err != nil {
		return err
	}
	if *before < 0 {
		return invalid("before", "must be a notification id")
	}
	ns, err := a.ledger.Notifications(a.ctx, a.pool, pos[0], *before, *limit)
	if err != nil {
		return err
	}
	list := jobs.NotificationList(ns, *limit, a.getenv(config.EnvLinkBase))
	if *asJSON {
		return a.printJSON(list)
	}
	for _, n := range list.Notifications {
		a.printf("%s  %s  %s\n    %s\n", n.CreatedAt.Format(time.RFC3339), n.MessageID, n.Title, n.Message)
		for _, d := range n.Deliveries {
			line := fmt.Sprintf("    %s %s: %s", d.Channel, d.Target, d.Status)
			if d.LastError != "" {
				line += " (" + d.LastError + ")"
			}
			a.printf("%s\n", line)
		}
	}
	if list.NextBefore != nil {
		a.printf("(older ones: --before %d)\n", *list.NextBefore)
	}
	return nil
}

func runOrgEmails(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	var emails stringList
	fs.Var(&emails, "email", "an address the org's alerts are emailed to (repeat it; none clears the list)")
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if _, err := a.openOrg(pos[0]); err != nil {
		return err
	}
	if err := ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) error {
		return a.ledger.SetEmails(a.ctx, tx, pos[0], emails)
	}); err != nil {
		return err
	}
	if len(emails) == 0 {
		a.printf("%s: alerts are not emailed\n", pos[0])
	} else {
		a.printf("%s: alerts are emailed to %s\n", pos[0], strings.Join(emails, ", "))
	}
	return nil
}
