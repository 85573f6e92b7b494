package ecs

import (
	"context"
	"fmt"
	"sort"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// settingDefaults are the values an account starts with, and the values
// each setting accepts.
var settingDefaults = map[ecsapi.SettingName]struct {
	value   string
	allowed []string
}{
	ecsapi.SettingNameServiceLongArnFormat:            {"enabled", []string{"enabled", "disabled"}},
	ecsapi.SettingNameTaskLongArnFormat:               {"enabled", []string{"enabled", "disabled"}},
	ecsapi.SettingNameContainerInstanceLongArnFormat:  {"enabled", []string{"enabled", "disabled"}},
	ecsapi.SettingNameAwsvpcTrunking:                  {"disabled", []string{"enabled", "disabled"}},
	ecsapi.SettingNameContainerInsights:               {"disabled", []string{"enabled", "disabled", "enhanced"}},
	ecsapi.SettingNameFargateFIPSMode:                 {"disabled", []string{"enabled", "disabled"}},
	ecsapi.SettingNameTagResourceAuthorization:        {"on", []string{"on", "off"}},
	ecsapi.SettingNameFargateTaskRetirementWaitPeriod: {"7", []string{"0", "7", "14"}},
	ecsapi.SettingNameGuardDutyActivate:               {"off", []string{"on", "off"}},
	ecsapi.SettingNameDefaultLogDriverMode:            {"non-blocking", []string{"blocking", "non-blocking"}},
	ecsapi.SettingNameFargateEventWindows:             {"disabled", []string{"enabled", "disabled"}},
}

// accountScope is the principal under which account defaults are kept.
const accountScope = "account"

func (s *Service) settingKey(c call, principal string, name ecsapi.SettingName) string {
	return c.Keys().Setting(principal, string(name))
}

func checkSetting(name ecsapi.SettingName, value string) error {
	def, ok := settingDefaults[name]
	if !ok {
		return invalidParameter("Unknown account setting %q.", name)
	}
	if !contains(def.allowed, value) {
		return invalidParameter("Account setting %s accepts %v, not %q.", name, def.allowed, value)
	}
	return nil
}

// PutAccountSetting sets a setting for a principal (the caller by default).
func (s *Service) PutAccountSetting(ctx context.Context, in *ecsapi.PutAccountSettingRequest) (*ecsapi.PutAccountSettingResponse, error) {
	c := s.call(ctx)
	if err := checkSetting(in.Name, in.Value); err != nil {
		return nil, err
	}
	principal := orDefault(in.PrincipalArn, s.principal())
	st := ecsapi.Setting{Name: in.Name, Value: in.Value, PrincipalArn: principal, Type: ecsapi.SettingTypeUser}
	if err := s.Store.Update(ctx, func(tx *store.Tx) error { return tx.Put(s.settingKey(c, principal, in.Name), &st) }); err != nil {
		return nil, err
	}
	return &ecsapi.PutAccountSettingResponse{Setting: &st}, nil
}

// PutAccountSettingDefault sets a setting for every principal without one
// of its own.
func (s *Service) PutAccountSettingDefault(ctx context.Context, in *ecsapi.PutAccountSettingDefaultRequest) (*ecsapi.PutAccountSettingDefaultResponse, error) {
	c := s.call(ctx)
	if err := checkSetting(in.Name, in.Value); err != nil {
		return nil, err
	}
	st := ecsapi.Setting{Name: in.Name, Value: in.Value, PrincipalArn: s.principal(), Type: ecsapi.SettingTypeUser}
	if err := s.Store.Update(ctx, func(tx *store.Tx) error { return tx.Put(s.settingKey(c, accountScope, in.Name), &st) }); err != nil {
		return nil, err
	}
	return &ecsapi.PutAccountSettingDefaultResponse{Setting: &st}, nil
}

// DeleteAccountSetting removes a principal's own value of a setting.
func (s *Service) DeleteAccountSetting(ctx context.Context, in *ecsapi.DeleteAccountSettingRequest) (*ecsapi.DeleteAccountSettingResponse, error) {
	c := s.call(ctx)
	if _, ok := settingDefaults[in.Name]; !ok {
		return nil, invalidParameter("Unknown account setting %q.", in.Name)
	}
	principal := orDefault(in.PrincipalArn, s.principal())
	var st ecsapi.Setting
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		k := s.settingKey(c, principal, in.Name)
		ok, err := tx.Get(k, &st)
		if err != nil {
			return err
		}
		if !ok {
			return invalidParameter("Principal %s has no value of its own for %s.", principal, in.Name)
		}
		tx.Delete(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeleteAccountSettingResponse{Setting: &st}, nil
}

// effectiveSetting is a principal's value of a setting: its own, else the
// account default, else Wharf's default.
func (s *Service) effectiveSetting(r state.Reader, c call, principal string, name ecsapi.SettingName) (ecsapi.Setting, error) {
	for _, scope := range []string{principal, accountScope} {
		var st ecsapi.Setting
		ok, err := r.Get(s.settingKey(c, scope, name), &st)
		if err != nil || ok {
			return st, err
		}
	}
	return ecsapi.Setting{Name: name, Value: settingDefaults[name].value, PrincipalArn: principal, Type: ecsapi.SettingTypeAwsManaged}, nil
}

// ListAccountSettings lists a principal's settings.
func (s *Service) ListAccountSettings(ctx context.Context, in *ecsapi.ListAccountSettingsRequest) (*ecsapi.ListAccountSettingsResponse, error) {
	c := s.call(ctx)
	limit := int(in.MaxResults)
	if limit == 0 {
		limit = 10
	}
	if limit < 1 || limit > 10 {
		return nil, invalidParameter("maxResults must be between 1 and 10.")
	}
	if in.Value != "" && in.Name == "" {
		return nil, invalidParameter("value can only be given with name.")
	}
	principal := orDefault(in.PrincipalArn, s.principal())
	scope := fmt.Sprintf("ListAccountSettings/%s/%s/%s/%s/%v", c.Region, in.Name, in.Value, principal, in.EffectiveSettings)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(settingDefaults))
	for n := range settingDefaults {
		if in.Name == "" || n == in.Name {
			names = append(names, string(n))
		}
	}
	sort.Strings(names)
	r := s.reader(ctx)
	out := &ecsapi.ListAccountSettingsResponse{Settings: []ecsapi.Setting{}}
	for _, n := range names {
		if n <= after {
			continue
		}
		name := ecsapi.SettingName(n)
		var st ecsapi.Setting
		var ok bool
		if in.EffectiveSettings {
			if st, err = s.effectiveSetting(r, c, principal, name); err != nil {
				return nil, err
			}
			ok = true
		} else if ok, err = r.Get(s.settingKey(c, principal, name), &st); err != nil {
			return nil, err
		}
		if !ok || in.Value != "" && st.Value != in.Value {
			continue
		}
		if len(out.Settings) == limit {
			out.NextToken = s.tokens.Next(scope, string(out.Settings[limit-1].Name), true)
			break
		}
		out.Settings = append(out.Settings, st)
	}
	return out, nil
}
