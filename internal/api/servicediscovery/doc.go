// Package servicediscovery holds the AWS Cloud Map wire shapes, their input
// validation and the operation table, generated from the botocore service
// model.
package servicediscovery

//go:generate go run ../../../tools/apigen -service servicediscovery -package servicediscovery -invalid-code InvalidInput -unsupported-code InvalidInput -out .
