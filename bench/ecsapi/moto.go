package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// motoRunInstance starts an EC2 instance in moto through the EC2 Query API
// and returns its id; moto's RegisterContainerInstance looks it up.
func motoRunInstance(ctx context.Context, endpoint string) (string, error) {
	form := url.Values{
		"Action": {"RunInstances"}, "Version": {"2016-11-15"},
		"ImageId": {"ami-12c6146b"}, "InstanceType": {"t2.micro"},
		"MinCount": {"1"}, "MaxCount": {"1"},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(form))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	creds := aws.Credentials{AccessKeyID: "AKIAMOTOBENCH0000000", SecretAccessKey: "moto"}
	hash := sha256Hex(form)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "ec2", region, time.Now()); err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	var out struct {
		Instances []string `xml:"instancesSet>item>instanceId"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		return "", err
	}
	if len(out.Instances) != 1 {
		return "", errors.New("RunInstances returned no instance")
	}
	return out.Instances[0], nil
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
